"""Routes of the data binding test project."""

from channels_core import route_class

from .consumers import Topic

channel_routing = [route_class(Topic, path=r"^/notes/(?P<topic>\w+)/$")]
