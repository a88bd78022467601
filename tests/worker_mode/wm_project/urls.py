"""A plain Django view, served by the workers through ``django_views``."""

from django.http import HttpResponse
from django.urls import path


def page(request):
    """A Django page."""
    return HttpResponse("<h1>worker-mode page</h1>", content_type="text/html")


urlpatterns = [path("page/", page)]
