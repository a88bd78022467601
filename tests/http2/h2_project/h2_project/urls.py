"""One Django view: what Django sees of the request."""

from django.http import JsonResponse
from django.urls import path


def meta(request):
    return JsonResponse(
        {
            "protocol": request.scope["http_version"],
            "host": request.get_host(),
            "cookies": request.COOKIES,
            "secure": request.is_secure(),
        }
    )


urlpatterns = [path("view/", meta)]
