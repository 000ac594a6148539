"""spanlake collector."""
