"""No Django views: every path the test uses is routed."""

urlpatterns = []
