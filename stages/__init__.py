"""Thin DVC entry points: `python -m stages.<name>` reads params and upstream
manifests, calls `pipeline`, and writes the stage's outputs."""
