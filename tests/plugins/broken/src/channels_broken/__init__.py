"""A plugin whose module fails to import, as a plugin with a bug would."""

raise RuntimeError("channels_broken is broken on purpose")
