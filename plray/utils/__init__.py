"""Small helpers shared across layers (no Ray)."""
