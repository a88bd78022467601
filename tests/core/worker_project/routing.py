"""The routing the test worker serves."""

from channels_core.routing import route

from . import consumers

channel_routing = [
    route("work.echo", consumers.echo),
    route("work.slow", consumers.slow),
    route("work.boom", consumers.boom),
    route("other.echo", consumers.echo),
]
