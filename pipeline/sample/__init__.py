"""The embedded sample: multi-instrument songs generated from the seed, with ground truth."""
