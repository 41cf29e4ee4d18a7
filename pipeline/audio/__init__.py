"""Audio measurements and processing: loudness, true peak, limiting, mixing."""
