"""MIDI loading, validation, description, splitting and writing (pretty_midi + mido)."""
