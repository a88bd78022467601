"""Django URLs: what the routing does not take is served here."""

from django.http import HttpResponse
from django.urls import path


def django_hello(request):
    """A plain Django view."""
    return HttpResponse(f"django says hi to {request.path}", content_type="text/plain")


def django_secure(request):
    """Whether Django sees the request as secure (HTTPS)."""
    return HttpResponse(f"secure={request.is_secure()}", content_type="text/plain")


urlpatterns = [path("django/", django_hello), path("secure/", django_secure)]
