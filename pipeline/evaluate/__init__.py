"""Stage `evaluate`: does the fine-tune follow tempo and key better than the base model?

grid (the prompts), generate (the sampler, in .venv-train), measure (tempo and key of
audio), metrics (Acc1/Acc2, key exact / key only / MIREX weighted), report (records,
summary, plot tables), models (which models, and the generation spec), boundary (the
spec and result, typed on both sides of the process boundary).
"""
