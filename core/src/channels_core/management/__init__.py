"""Django management commands of Channels."""
