"""A tiny Django project that records the ticker's ticks."""
