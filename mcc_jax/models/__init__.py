"""Flax linen modules of the model (filled in by the model port)."""
