"""``manage.py runworker`` and the other Channels commands."""
