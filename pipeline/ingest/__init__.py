"""Find source MIDI files (sample, Lakh, music21, any folder), probe and deduplicate them."""
