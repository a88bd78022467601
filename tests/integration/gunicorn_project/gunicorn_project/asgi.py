"""What ``gunicorn -k channels_core.gunicorn.ChannelsWorker`` is given to serve."""

from channels_core.application import ChannelsApplication

application = ChannelsApplication()
