"""Notes: a model, and its binding in ``bindings.py`` (imported by the channels_core app)."""
