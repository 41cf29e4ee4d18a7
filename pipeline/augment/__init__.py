"""Structured augmentation: key, BPM, FX and timbre variants of clips, with labels recomputed from what was done."""
