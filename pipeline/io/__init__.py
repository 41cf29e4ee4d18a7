"""Atomic file writes and the one way to read and write manifests."""
