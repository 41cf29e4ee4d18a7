"""A tiny random T5 encoder with its own sentencepiece vocabulary, built offline.

T5 from the hub is unreachable here, and the CPU smoke config needs a text
encoder of the real kind (T5Conditioner, AutoTokenizer + T5EncoderModel). This
builds one deterministically: a unigram sentencepiece model trained on a fixed
word list (single thread) and a T5EncoderModel initialised from a fixed seed,
so the same directory comes out byte for byte on every machine.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

VERSION = 1
D_MODEL = 32
VOCAB_SIZE = 256
SEED = 0
DONE = "built.json"

# Words the pipeline's prompts use, so the tiny vocabulary tokenises them sensibly.
_WORDS = """
piano electric bass guitar acoustic drums kit synth lead pad strings ensemble brass section flute sax saxophone
clarinet horn organ bells arpeggio chord progression melody bassline rhythm loop groove beat fill
major minor key C D E F G A B sharp flat BPM tempo bars time signature slow fast medium dense sparse
warm bright dark airy wide mono punchy gritty clean noisy dynamic soft loud reverb delay chorus phaser
distortion bitcrush compressor pitch shift stretch energetic calm happy sad pop rock jazz blues classical
electronic ambient cinematic funk soul folk country metal hip hop dance house techno trance ascending
descending rising falling register high low mid a an the with and of in at for played on plays playing
""".split()  # noqa: SIM905 - a word list reads better as text


def corpus() -> list[str]:
    """Deterministic training sentences over the word list."""
    lines = []
    n = len(_WORDS)
    for i in range(600):
        words = [_WORDS[(i * 7 + k * 13 + (i // n)) % n] for k in range(6 + i % 7)]
        lines.append(f"{' '.join(words)}, {60 + i % 120} BPM")
    return lines


def build(directory: Path) -> Path:
    """Write the tokenizer and the random encoder into `directory` (atomically, once)."""
    directory = Path(directory)
    if (directory / DONE).exists():
        return directory
    import sentencepiece as spm
    import torch

    from pipeline.train import compat

    compat.torchaudio_importable()  # transformers imports both when installed
    compat.torchvision_importable()
    from transformers import T5Config, T5EncoderModel

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model = io.BytesIO()  # no file paths: the trainer spec stored in the model stays the same
        spm.set_random_generator_seed(SEED)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus()),
            model_writer=model,
            vocab_size=VOCAB_SIZE,
            hard_vocab_limit=False,  # the word list holds fewer pieces; the model keeps 256 rows
            model_type="unigram",
            num_threads=1,
            shuffle_input_sentence=False,
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            minloglevel=2,
        )
        (tmp / "spiece.model").write_bytes(model.getvalue())
        torch.manual_seed(SEED)
        config = T5Config(
            vocab_size=VOCAB_SIZE,
            d_model=D_MODEL,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
        T5EncoderModel(config).save_pretrained(tmp)
        (tmp / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": "T5Tokenizer", "model_max_length": 512, "extra_ids": 0}) + "\n"
        )
        (tmp / DONE).write_text(json.dumps({"version": VERSION, "d_model": D_MODEL, "seed": SEED}) + "\n")
        tmp.chmod(0o755)  # mkdtemp and safetensors create owner-only files
        for f in tmp.iterdir():
            f.chmod(0o644)
        if directory.exists():
            shutil.rmtree(directory)
        tmp.rename(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory
