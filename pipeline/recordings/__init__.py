"""Recordings as a second source: audio files with labels a person confirms."""
