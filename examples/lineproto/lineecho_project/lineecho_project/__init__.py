"""A tiny Django project that serves the lineecho protocol."""
