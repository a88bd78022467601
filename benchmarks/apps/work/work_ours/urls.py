"""No Django views: the benchmark only requests routed paths."""

urlpatterns: list = []
