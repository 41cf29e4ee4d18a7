"""Build a tiny random Llama chat model offline, for vLLM tests: `python tests/llm_factory.py OUTDIR`.

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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: llm_factory.py OUTDIR")
    print(build(Path(sys.argv[1])))
