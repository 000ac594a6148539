"""spanlake collector/receivers."""
