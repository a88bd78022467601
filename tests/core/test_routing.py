"""Routing: filters, keyword arguments, includes that strip prefixes, and build-time errors."""

from __future__ import annotations

import re
import sys
import types

import pytest
from django.test import override_settings

from channels_core.consumers import BaseConsumer
from channels_core.exceptions import ImproperlyConfigured
from channels_core.routing import Router, include, route, route_class


def connect(message, **kwargs):
    pass


def receive(message, **kwargs):
    pass


def other(message, **kwargs):
    pass


class Chat(BaseConsumer):
    method_mapping = {"websocket.connect": "connect", "websocket.receive": "receive"}

    def connect(self, message, **kwargs):
        pass

    def receive(self, message, **kwargs):
        pass


@pytest.fixture
def routing_module():
    """A real importable module holding routing lists, removed afterwards."""
    module = types.ModuleType("routing_fixture_module")
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def test_route_matches_by_channel_then_filters_with_named_groups_as_kwargs():
    router = Router(
        [
            route("websocket.receive", receive, path=r"^/chat/(?P<room>[^/]+)/$"),
            route("websocket.receive", other),
        ]
    )
    assert router.match("websocket.receive", {"path": "/chat/lobby/"}) == (
        receive,
        {"room": "lobby"},
    )
    # The first route's filter fails, so the unfiltered second one wins.
    assert router.match("websocket.receive", {"path": "/news/"}) == (other, {})
    assert router.match("websocket.connect", {"path": "/chat/lobby/"}) is None
    assert router.channels == frozenset({"websocket.receive"})


def test_first_match_wins_and_missing_keys_do_not_match():
    router = Router([route("a", connect, path=r"^/x"), route("a", receive, path=r"^/")])
    assert router.match("a", {"path": "/x/1"}) == (connect, {})
    assert router.match("a", {"path": "/y"}) == (receive, {})
    assert router.match("a", {}) is None
    assert router.match("a", {"path": 5}) is None


def test_repeated_matches_give_the_same_answers_as_the_first():
    # Matches are remembered by the filtered keys' values: repeats, other values, a caller
    # changing its kwargs and values that cannot be remembered must not change the answers.
    router = Router(
        [
            route("a", connect, path=r"^/chat/(?P<room>[^/]+)/$"),
            route("a", receive, kind=r"^x$"),
        ]
    )
    for _ in range(2):
        consumer, kwargs = router.match("a", {"path": "/chat/lobby/", "text": "hi"})
        assert (consumer, kwargs) == (connect, {"room": "lobby"})
        kwargs["room"] = "changed"
        assert router.match("a", {"path": "/chat/hall/"}) == (connect, {"room": "hall"})
        assert router.match("a", {"path": b"/chat/lobby/"}) == (connect, {"room": "lobby"})
        assert router.match("a", {"path": "/news/", "kind": "x"}) == (receive, {})
        assert router.match("a", {"path": "/news/"}) is None
        assert router.match("a", {"path": ["/chat/lobby/"], "kind": "x"}) == (receive, {})
        long_room = "r" * 300
        assert router.match("a", {"path": f"/chat/{long_room}/"}) == (connect, {"room": long_room})


def test_several_filters_must_all_match():
    router = Router(
        [route("http.request", connect, method=r"^POST$", path=r"^/items/(?P<id>\d+)/$")]
    )
    assert router.match("http.request", {"method": "POST", "path": "/items/7/"}) == (
        connect,
        {"id": "7"},
    )
    assert router.match("http.request", {"method": "GET", "path": "/items/7/"}) is None


def test_bytes_values_are_matched_as_latin1_text():
    router = Router([route("udp.receive", connect, data=r"^PING (?P<n>\d+)")])
    assert router.match("udp.receive", {"data": b"PING 42\xff"}) == (connect, {"n": "42"})


def test_route_class_routes_every_channel_of_the_class():
    router = Router([route_class(Chat, path=r"^/chat/$")])
    assert router.channels == frozenset({"websocket.connect", "websocket.receive"})
    assert router.match("websocket.connect", {"path": "/chat/"}) == (Chat, {})
    assert router.match("websocket.receive", {"path": "/other/"}) is None


def test_include_strips_the_matched_prefix_and_nests(routing_module):
    routing_module.inner = [route("websocket.receive", receive, path=r"^/(?P<room>\w+)/$")]
    routing_module.middle = [include("routing_fixture_module.inner", path=r"^/rooms")]
    router = Router(
        [
            include("routing_fixture_module.middle", path=r"^/(?P<app>chat)"),
            route("websocket.receive", other, path=r"^/chat/rooms/lobby/$"),
        ]
    )
    assert router.match("websocket.receive", {"path": "/chat/rooms/lobby/"}) == (
        receive,
        {"app": "chat", "room": "lobby"},
    )
    # Inner routes see only what the prefixes left: the unstripped path does not match them.
    assert router.match("websocket.receive", {"path": "/chat/lobby/"}) is None


def test_include_accepts_a_list_and_its_filters_gate_the_inner_routes():
    router = Router([include([route("http.request", connect, path=r"^/$")], path=r"^/api")])
    assert router.match("http.request", {"path": "/api/"}) == (connect, {})
    assert router.match("http.request", {"path": "/web/"}) is None


def test_from_alias_reads_the_routing_setting(routing_module):
    routing_module.routes = [route("thumbnails", connect)]
    layers = {"default": {"BACKEND": "memory", "ROUTING": "routing_fixture_module.routes"}}
    with override_settings(CHANNEL_LAYERS=layers):
        router = Router.from_alias("default")
    assert router.match("thumbnails", {}) == (connect, {})


def test_from_alias_without_routing_names_the_key():
    with (
        override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "memory"}}),
        pytest.raises(ImproperlyConfigured, match=r"CHANNEL_LAYERS\['default'\] has no 'ROUTING'"),
    ):
        Router.from_alias("default")


def test_unknown_dotted_path_is_a_clear_error():
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("'no_such_module.routes' cannot be imported")
    ):
        Router("no_such_module.routes")
    with pytest.raises(ImproperlyConfigured, match="is not a dotted path"):
        Router("routes")


def test_routing_that_is_not_a_list_is_a_clear_error(routing_module):
    routing_module.routes = {"websocket.receive": receive}
    with pytest.raises(ImproperlyConfigured, match="is a dict, not a list"):
        Router("routing_fixture_module.routes")
    routing_module.routes = [receive]
    with pytest.raises(ImproperlyConfigured, match="which is not a route"):
        Router("routing_fixture_module.routes")


def test_bad_regex_unnamed_group_and_bytes_pattern_are_clear_errors():
    with pytest.raises(ImproperlyConfigured, match="not a valid regular expression"):
        route("a", connect, path=r"^/(unclosed")
    with pytest.raises(ImproperlyConfigured, match="unnamed group"):
        route("a", connect, path=r"^/(\d+)/$")
    with pytest.raises(ImproperlyConfigured, match="bytes pattern"):
        route("a", connect, path=re.compile(rb"^/"))
    with pytest.raises(ImproperlyConfigured, match="pass a str regular expression"):
        route("a", connect, path=5)


def test_consumer_that_is_not_callable_is_a_clear_error():
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("'myapp.consumers.ws' is a str, which is not")
    ):
        route("websocket.receive", "myapp.consumers.ws")
    with pytest.raises(ImproperlyConfigured, match="not a consumer class with channel_names"):
        route_class(connect)

    class Empty(BaseConsumer):
        pass

    with pytest.raises(ImproperlyConfigured, match="handles no channels"):
        route_class(Empty)


def test_include_filters_must_be_anchored():
    with pytest.raises(ImproperlyConfigured, match=r"does not start with '\^'.*path='\^/chat'"):
        include([], path=r"/chat")


def test_include_that_loops_back_is_a_clear_error(routing_module):
    routing_module.routes = [include("routing_fixture_module.routes", path=r"^/a")]
    with pytest.raises(ImproperlyConfigured, match="includes itself"):
        Router("routing_fixture_module.routes")


def test_invalid_channel_name_is_rejected():
    with pytest.raises(ValueError, match="characters outside"):
        route("bad channel", connect)
