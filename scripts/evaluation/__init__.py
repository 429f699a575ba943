"""Scoring and ranking checkpoints from their renders (pure; no model, no I/O)."""
