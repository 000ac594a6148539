"""spanlake collector/storage."""
