"""No Django views: the benchmark only opens routed WebSocket paths."""

urlpatterns: list = []
