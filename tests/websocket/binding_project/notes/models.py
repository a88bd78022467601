"""A note belongs to a topic; its secret is never sent to clients."""

from django.db import models


class Note(models.Model):
    """A note of a topic."""

    topic = models.CharField(max_length=20)
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    secret = models.CharField(max_length=100, blank=True)
