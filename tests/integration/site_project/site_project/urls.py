"""Django views: the page."""

from django.http import HttpResponse
from django.urls import path


def page(request):
    """A plain Django page."""
    return HttpResponse("<h1>site page</h1>", content_type="text/html")


urlpatterns = [path("page/", page)]
