"""Render MIDI tracks to audio: SoundFont (FluidSynth) by default, VST3 via pedalboard."""
