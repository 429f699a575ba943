"""Scoring and ranking checkpoints from their renders (no model): plan, scores, ranking and report are
pure; figures draws rank's PNGs and proposal reads rank.json back for deploy and status."""
