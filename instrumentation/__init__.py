"""spanlake.instrumentation: GenAI spans for an app (built by the instrumentation issue)."""
