"""No Django views: every path the routing does not take is a 404."""

urlpatterns = []
