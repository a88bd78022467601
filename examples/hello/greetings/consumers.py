"""The hello example's consumer."""

from channels_core import Group


def greet(message, **kwargs):
    """Answer a ``hello`` message on its reply channel; runs in the worker's thread pool."""
    name = message["name"]
    Group("greeted").add(message.reply_channel)
    message.reply_channel.send({"text": f"Hello, {name}!"})
