"""Fine-tuning Stable Audio Open's DiT with stable-audio-tools 0.0.19.

Only `configs`, `clips` and `spec` are imported by the stage (in .venv); the rest
runs in the training environment (.venv-train) as `python -m pipeline.train.run`.
"""
