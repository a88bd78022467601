"""The fixtures and helpers of the layer conformance suite, shared by all its parts."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from ...exceptions import LayerClosed
from ...layers import BaseChannelLayer
from ...names import random_suffix

LayerFactory = Callable[..., Awaitable[BaseChannelLayer]]


def fresh(base: str) -> str:
    """A channel or group name no other test uses: *base* plus a random part."""
    return f"{base}.{random_suffix()}".replace("-", "_")


class ConformanceBase:
    """The fixtures and helpers every part of the suite uses; :class:`LayerConformance`
    gathers the parts. Override ``make_layer`` in the subclass."""

    pytestmark = pytest.mark.asyncio

    #: Bound on every wait that must end with a message.
    receive_timeout: float = 5.0
    #: How long to wait before concluding that no message will come.
    absent_timeout: float = 0.2
    #: The expiry (seconds) the expiry tests configure, and how long they sleep past it.
    short_expiry: float = 0.2
    expiry_margin: float = 0.15

    @pytest.fixture
    def make_layer(self) -> Callable[..., Any]:
        """Override in the subclass: a callable ``(**config) -> layer`` (or its awaitable)."""
        pytest.fail(
            f"{type(self).__name__} runs the layer conformance suite but defines no "
            "make_layer fixture: add one returning a callable that builds your layer."
        )

    @pytest_asyncio.fixture
    async def layer_factory(self, make_layer: Callable[..., Any]):
        """Builds layers with ``await layer_factory(**config)`` and closes them afterwards."""
        layers: list[BaseChannelLayer] = []

        async def factory(**config: Any) -> BaseChannelLayer:
            layer = make_layer(**config)
            if inspect.isawaitable(layer):
                layer = await layer
            layers.append(layer)
            return layer

        yield factory
        for layer in layers:
            with contextlib.suppress(LayerClosed):
                await asyncio.wait_for(layer.close(), self.receive_timeout)

    @pytest_asyncio.fixture
    async def layer(self, layer_factory: LayerFactory) -> BaseChannelLayer:
        """A layer with the default options."""
        return await layer_factory()

    # Helpers -------------------------------------------------------------------------

    async def receive(self, layer: BaseChannelLayer, channel: str) -> dict:
        """The next message of *channel*, failing the test if none comes in time."""
        return await asyncio.wait_for(layer.receive(channel), self.receive_timeout)

    async def receive_prefix(self, layer: BaseChannelLayer, prefix: str) -> tuple[str, dict]:
        """The next ``(channel, message)`` under *prefix*, failing if none comes in time."""
        return await asyncio.wait_for(layer.receive_prefix(prefix), self.receive_timeout)

    async def assert_nothing(self, layer: BaseChannelLayer, channel: str) -> None:
        """Assert that no message arrives on *channel* within ``absent_timeout``."""
        try:
            message = await asyncio.wait_for(layer.receive(channel), self.absent_timeout)
        except TimeoutError:
            return
        pytest.fail(f"Expected no message on {channel!r}, got {message!r}.")

    async def started(self, coroutine: Awaitable[Any], delay: float = 0.02) -> asyncio.Task:
        """Run *coroutine* as a task and give it *delay* seconds to start waiting."""
        task = asyncio.ensure_future(coroutine)
        await asyncio.sleep(delay)
        return task

    @staticmethod
    async def cancel(*tasks: asyncio.Task) -> list[Any]:
        """Cancel *tasks* and return what each ended with (result or exception)."""
        for task in tasks:
            task.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_for_count(self, counted: Callable[[], int], target: int) -> None:
        """Wait until ``counted()`` reaches *target*, failing when it stops progressing."""
        last, last_change = counted(), time.monotonic()
        deadline = time.monotonic() + 60
        while counted() < target:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            if counted() != last:
                last, last_change = counted(), now
            elif now - last_change > self.receive_timeout or now > deadline:
                pytest.fail(f"Only {counted()} of {target} messages arrived; then none.")
