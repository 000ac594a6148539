"""spanlake analytics."""
