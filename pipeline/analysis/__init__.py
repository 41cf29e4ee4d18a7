"""Measurements behind the words prompts use: timbre from audio, what the notes do from MIDI."""
