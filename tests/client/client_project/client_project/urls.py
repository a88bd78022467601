"""The one page: it loads channels.js and hands its Client to the tests."""

from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [path("", TemplateView.as_view(template_name="client/page.html"))]
