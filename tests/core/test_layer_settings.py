"""CHANNEL_LAYERS backends: registered names, dotted paths, and the errors for bad ones."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channels_core import get_channel_layer
from channels_core.exceptions import ImproperlyConfigured
from channels_memory import InMemoryChannelLayer


def layers(**entry):
    return {"default": {"BACKEND": "memory", **entry}}


def test_a_registered_name_builds_the_layer_with_its_config():
    with override_settings(CHANNEL_LAYERS=layers(CONFIG={"capacity": 7, "expiry": 5})):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert layer.capacity == 7
        assert layer.expiry == 5
        assert layer.alias == "default"
        assert get_channel_layer() is layer


def test_a_dotted_path_builds_the_layer():
    with override_settings(
        CHANNEL_LAYERS=layers(BACKEND="channels_memory.layer.InMemoryChannelLayer")
    ):
        assert isinstance(get_channel_layer(), InMemoryChannelLayer)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (
            {"BACKEND": "rabbit"},
            "BACKEND 'rabbit' is not an installed channel layer; installed layers: .*'memory'",
        ),
        ({"BACKEND": "rabbit"}, "Install the distribution that provides 'rabbit' or use one"),
        ({"BACKEND": "no.such.Layer"}, "BACKEND 'no.such.Layer' cannot be imported"),
        ({"BACKEND": "collections.OrderedDict"}, "not a BaseChannelLayer subclass"),
        (
            {"CONFIG": {"hosts": ["localhost"]}},
            "has the key 'hosts', which the 'memory' layer does not take",
        ),
        ({"CONFIG": {"capacity": 0}}, "Layer option 'capacity' is 0; it must be a positive"),
        ({"CONFIG": {"channel_capacity": {3: 4}}}, "keys are glob strings or compiled"),
    ],
)
def test_bad_backends_and_options_fail_with_one_sentence(entry, fragment):
    with (
        override_settings(CHANNEL_LAYERS=layers(**entry)),
        pytest.raises(ImproperlyConfigured, match=fragment.replace("(", r"\(")),
    ):
        get_channel_layer()


def test_an_unknown_alias_lists_the_configured_ones():
    with (
        override_settings(CHANNEL_LAYERS=layers()),
        pytest.raises(ImproperlyConfigured, match=r"no alias 'other'"),
    ):
        get_channel_layer("other")


def test_channel_capacity_patterns_pick_the_first_match():
    import re

    layer = InMemoryChannelLayer(
        capacity=100,
        channel_capacity={"http.response!*": 5, re.compile(r"^websocket\."): 20, "http.*": 9},
    )
    assert layer.capacity_for("http.response!abc") == 5
    assert layer.capacity_for("websocket.send!x") == 20
    assert layer.capacity_for("http.request") == 9
    assert layer.capacity_for("other") == 100
