"""Django signals of Channels.

``consumer_started`` and ``consumer_finished`` are sent around every consumer the
:class:`~channels_core.dispatch.Dispatcher` runs, with ``sender`` the routed consumer and the
keyword arguments ``channel`` (the channel name) and ``message`` (the
:class:`~channels_core.message.Message`); ``consumer_finished`` adds ``error``, the exception
the consumer raised or None. They are sent where the consumer runs: in the pool thread for a
sync consumer (like Django's ``request_started``/``request_finished``, so receivers may use
the ORM), on the event loop for an async one. Nothing is sent when no receiver is connected.
"""

from __future__ import annotations

from django.dispatch import Signal

consumer_started = Signal()
consumer_finished = Signal()
