"""WebsocketBinding in process: its frames, its members, and how it sits in a demultiplexer.

The test with a real server, a real client and a model saved in another process is
test_binding_server.py.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from channels_core import Message
from channels_core.exceptions import ImproperlyConfigured
from channels_ws import WebsocketBinding, WebsocketBindingWithMembers, WebsocketMultiplexer


@pytest.fixture(scope="module")
def bindings():
    """The two bindings, defined (and so registered) for this module's tests only: a binding
    defined at import would send for every User saved by the other test modules."""

    class UserBinding(WebsocketBinding):
        model = User
        stream = "users"
        fields = ["username"]

        def group_names(self, instance):
            return ["ws-users"]

    class UserWithMembers(WebsocketBindingWithMembers):
        model = "auth.User"
        stream = "people"
        exclude = ["password", "groups", "user_permissions", "last_login", "date_joined"]
        send_members = ["is_anonymous", "get_full_name", "_meta.model_name"]

        def group_names(self, instance):
            return ["ws-people"]

    yield UserBinding, UserWithMembers
    UserBinding.unregister()
    UserWithMembers.unregister()


def test_outbound_frames_are_the_demultiplexer_envelope_as_json(bindings):
    UserBinding, _ = bindings
    user = User(pk=7, username="ann")
    payload = UserBinding().serialize(user, "create")
    message = UserBinding.encode(UserBinding.stream, payload)
    assert set(message) == {"text"}
    assert json.loads(message["text"]) == {
        "stream": "users",
        "payload": {"action": "create", "pk": 7, "data": {"username": "ann"}, "model": "auth.user"},
    }
    assert json.loads(message["text"]) == WebsocketMultiplexer.envelope("users", payload)


def test_members_are_sent_with_the_fields(bindings):
    _, UserWithMembers = bindings
    user = User(pk=8, username="bo", first_name="Bo", last_name="Diddley", email="b@example.com")
    data = UserWithMembers().serialize(user, "update")["data"]
    assert data == {
        "username": "bo",
        "first_name": "Bo",
        "last_name": "Diddley",
        "email": "b@example.com",
        "is_staff": False,
        "is_active": True,
        "is_superuser": False,
        "is_anonymous": False,
        "get_full_name": "Bo Diddley",
        "_meta__model_name": "user",
    }


def stream_message(channel: str, **content) -> Message:
    return Message({"reply_channel": "websocket.send!test", "path": "/", **content}, channel)


def test_the_consumer_ignores_the_connect_and_disconnect_of_its_stream(bindings):
    UserBinding, _ = bindings
    multiplexer = WebsocketMultiplexer("users", None, json.dumps)
    for channel in ("websocket.connect", "websocket.disconnect"):
        UserBinding.consumer(stream_message(channel), multiplexer=multiplexer)


def test_a_consumer_mapped_to_another_stream_says_how_to_map_it(bindings):
    UserBinding, _ = bindings
    multiplexer = WebsocketMultiplexer("people", None, json.dumps)
    with pytest.raises(ImproperlyConfigured, match=r"consumers = \{'users': UserBinding"):
        UserBinding.consumer(stream_message("websocket.connect"), multiplexer=multiplexer)


def test_a_frame_is_decoded_into_action_pk_and_data(bindings):
    UserBinding, _ = bindings
    frame = {"action": "update", "pk": 3, "data": {"username": "cy"}}
    message = stream_message("websocket.receive", text=json.dumps(frame))
    assert UserBinding().deserialize(message) == ("update", 3, {"username": "cy"})
    with pytest.raises(ValueError, match="binding messages are objects"):
        UserBinding().deserialize(stream_message("websocket.receive", text="[1]"))
