"""A tiny Django project that answers the ask protocol's questions."""
