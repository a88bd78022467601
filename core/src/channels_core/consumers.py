"""Consumers: what handles a message.

A *function consumer* is ``consumer(message, **kwargs)``, sync or ``async def``. A *class
consumer* subclasses :class:`BaseConsumer` and maps channels to methods::

    class Chat(BaseConsumer):
        method_mapping = {"websocket.connect": "connect", "websocket.receive": "receive"}
        channel_session = True

        def connect(self, message, room):
            ...

A new instance handles each message: ``Chat(message, **kwargs)``, then the mapped method is
called with ``(message, **kwargs)``. Whatever the kind, the same rule runs it: a sync callable
runs in the worker's thread pool (Django ORM safe), an ``async def`` one on the event loop.
:class:`AsyncConsumer` is a :class:`BaseConsumer` whose mapped methods must all be async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from asgiref.sync import iscoroutinefunction

from .exceptions import ImproperlyConfigured
from .message import Message


class BaseConsumer:
    """A class consumer: ``method_mapping`` maps each channel name to a method name.

    ``channel_session = True`` gives every mapped method a ``message.channel_session`` (see
    :func:`channels_core.sessions.channel_session`).
    """

    method_mapping: ClassVar[dict[str, str]] = {}
    channel_session: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for channel, method_name in cls.method_mapping.items():
            method = getattr(cls, method_name, None)
            if not callable(method):
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.method_mapping maps {channel!r} to {method_name!r}, "
                    f"but {cls.__qualname__} has no method {method_name!r}; add it or fix the "
                    "mapping."
                )
            cls._check_method(channel, method_name, method)

    @classmethod
    def _check_method(cls, channel: str, method_name: str, method: Callable) -> None:
        """Hook for subclasses that restrict their methods (AsyncConsumer)."""

    def __init__(self, message: Message, **kwargs: Any) -> None:
        self.message = message
        self.kwargs = kwargs

    @classmethod
    def channel_names(cls) -> set[str]:
        """The channels this class handles: the keys of ``method_mapping``."""
        return set(cls.method_mapping)

    def get_handler(self, message: Message, **kwargs: Any) -> Callable[..., Any]:
        """The bound method for the message's channel, wrapped by the class's session flags."""
        handler = getattr(self, self.method_mapping[message.channel.name])
        if self.channel_session:
            from .sessions import channel_session

            handler = channel_session(handler)
        return handler


class AsyncConsumer(BaseConsumer):
    """A :class:`BaseConsumer` whose mapped methods are all ``async def``, run on the loop."""

    @classmethod
    def _check_method(cls, channel: str, method_name: str, method: Callable) -> None:
        if not iscoroutinefunction(method):
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.{method_name} (for {channel!r}) is not 'async def', but "
                f"{cls.__qualname__} is an AsyncConsumer; make it 'async def' or subclass "
                "BaseConsumer instead."
            )


def get_handler(
    consumer: Callable[..., Any], message: Message, kwargs: dict[str, Any]
) -> Callable[..., Any]:
    """The callable to run as ``handler(message, **kwargs)`` for a routed *consumer*.

    A :class:`BaseConsumer` subclass gets a new instance and its mapped method; any other
    callable is its own handler.
    """
    if isinstance(consumer, type) and issubclass(consumer, BaseConsumer):
        return consumer(message, **kwargs).get_handler(message, **kwargs)
    return consumer
