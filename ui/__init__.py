"""spanlake ui."""
