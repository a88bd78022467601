"""Data binding in process: field lists, serialization, the actions each group gets, commits
and rollbacks, and inbound changes with has_permission, on Django's User model and the
memory layer. The test across real processes and sockets is tests/websocket/test_binding_server.py.
"""

from __future__ import annotations

import contextlib

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser, User
from django.core.management import call_command
from django.db import transaction

from channels_core import Group, Message, get_channel_layer
from channels_core.binding import Binding
from channels_core.exceptions import ImproperlyConfigured
from channels_core.layers import channel_layers

WATCHERS = {"users": "watch.users", "staff": "watch.staff"}


@pytest.fixture(scope="module")
def database():
    """The in-memory test database, with Django's auth tables."""
    call_command("migrate", verbosity=0, interactive=False)


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.reset()
    yield
    channel_layers.reset()


@pytest.fixture
def watchers(database):
    """A channel in each of the groups ``users`` and ``staff``; the users are deleted after."""
    for group, channel in WATCHERS.items():
        Group(group).add(channel)
    yield
    User.objects.all().delete()


@contextlib.contextmanager
def bound(**attributes):
    """A Binding subclass with *attributes*, registered (it is defined after the app is
    ready) and unregistered at the end."""
    attributes.setdefault("stream", "users")
    binding = type("UserBinding", (Binding,), attributes)
    try:
        yield binding
    finally:
        binding.unregister()


def received(channel: str) -> list[dict]:
    """What waits on *channel* of the memory layer, taken off it."""
    layer = get_channel_layer()

    async def drain() -> list[dict]:
        messages = []
        while (await layer.stats(channel)).pending:
            messages.append(await layer.receive(channel))
        return messages

    return async_to_sync(drain)()


def actions(channel: str) -> list[tuple[str, str]]:
    """``(action, username)`` of each binding message waiting on *channel*."""
    return [
        (message["payload"]["action"], message["payload"]["data"]["username"])
        for message in received(channel)
    ]


def user_groups(self, instance):
    return ["users", "staff"] if instance.is_staff else ["users"]


# Field lists and serialization


@pytest.mark.parametrize(
    ("fields", "exclude", "expected"),
    [
        (["username", "email"], None, ["username", "email"]),
        (["email", "username"], None, ["email", "username"]),
        (["username", "email", "id"], ["email"], ["username"]),
        (["__all__"], None, "all"),
        ("__all__", None, "all"),
        (None, ["password", "groups", "user_permissions"], "all-but"),
    ],
)
def test_field_lists(database, fields, exclude, expected):
    every = [field.name for field in User._meta.concrete_fields if field.name != "id"]
    every += ["groups", "user_permissions"]
    if expected == "all":
        expected = every
    elif expected == "all-but":
        expected = [name for name in every if name not in exclude]
    with bound(model=User, fields=fields, exclude=exclude, group_names=user_groups) as binding:
        assert list(binding.field_names) == expected
        user = User(pk=41, username="ann", email="ann@example.com", password="hash")
        payload = binding().serialize(user, "update")
        assert payload["action"] == "update"
        assert payload["pk"] == 41
        assert payload["model"] == "auth.user"
        assert sorted(payload["data"]) == sorted(expected)
        assert payload["data"]["username"] == "ann"


def test_data_is_json_safe():
    with bound(model="auth.User", fields=["date_joined", "is_active"]) as binding:
        assert binding.model is User
        user = User(pk=3, username="x")
        data = binding().serialize_data(user)
        assert isinstance(data["date_joined"], str)
        assert data["is_active"] is True


def test_a_binding_with_model_none_in_its_body_is_abstract():
    class Abstract(Binding):
        model = None
        stream = "users"
        fields = ["__all__"]

    assert not hasattr(Abstract, "field_names")

    class Concrete(Abstract):
        model = User

    try:
        assert Concrete.field_names[:2] == ("password", "last_login")
    finally:
        Concrete.unregister()


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"fields": ["username"]}, "has no model"),
        ({"model": "auth.Nope", "fields": ["username"]}, "names no installed model"),
        ({"model": object, "fields": ["username"]}, "not a Django model"),
        ({"model": User}, "sets neither fields nor exclude"),
        ({"model": User, "fields": ["username", "nmae"]}, "'nmae', which auth.User does not"),
        ({"model": User, "exclude": ["pasword"]}, "exclude names 'pasword'"),
        ({"model": User, "fields": ["username"], "stream": None}, "has no stream"),
    ],
)
def test_configuration_mistakes_are_sentences(attributes, fragment):
    attributes.setdefault("stream", "users")
    with pytest.raises(ImproperlyConfigured, match=fragment):
        type("Broken", (Binding,), attributes)


# Outbound


def test_each_group_gets_the_action_the_change_means_to_it(watchers):
    with bound(model=User, fields=["username", "is_staff"], group_names=user_groups):
        user = User.objects.create(username="ann")
        assert actions(WATCHERS["users"]) == [("create", "ann")]
        assert received(WATCHERS["staff"]) == []

        user.is_staff = True
        user.save()
        assert actions(WATCHERS["users"]) == [("update", "ann")]
        assert actions(WATCHERS["staff"]) == [("create", "ann")]

        user.is_staff = False
        user.save()
        assert actions(WATCHERS["users"]) == [("update", "ann")]
        assert actions(WATCHERS["staff"]) == [("delete", "ann")]

        pk = user.pk
        user.delete()
        (message,) = received(WATCHERS["users"])
        assert message == {
            "stream": "users",
            "payload": {
                "action": "delete",
                "pk": pk,
                "data": {"username": "ann", "is_staff": False},
                "model": "auth.user",
            },
        }


def test_a_queryset_delete_is_sent_too(watchers):
    with bound(model=User, fields=["username"], group_names=user_groups):
        User.objects.create(username="bo")
        User.objects.create(username="cy")
        received(WATCHERS["users"])
        User.objects.filter(username__in=["bo", "cy"]).delete()
        assert sorted(actions(WATCHERS["users"])) == [("delete", "bo"), ("delete", "cy")]


def test_messages_wait_for_the_commit(watchers):
    with bound(model=User, fields=["username"], group_names=user_groups):
        with transaction.atomic():
            User.objects.create(username="dee")
            assert received(WATCHERS["users"]) == []
        assert actions(WATCHERS["users"]) == [("create", "dee")]


def test_a_rolled_back_change_sends_nothing(watchers):
    with bound(model=User, fields=["username"], group_names=user_groups):
        with transaction.atomic():
            User.objects.create(username="eve")
            transaction.set_rollback(True)
        with transaction.atomic():
            with contextlib.suppress(RuntimeError), transaction.atomic():
                User.objects.create(username="fay")
                raise RuntimeError("roll the savepoint back")
            User.objects.create(username="gus")
        assert actions(WATCHERS["users"]) == [("create", "gus")]
        assert list(User.objects.values_list("username", flat=True)) == ["gus"]


def test_an_empty_payload_sends_nothing_and_unregister_stops_sending(watchers):
    class Quiet(Binding):
        model = User
        stream = "users"
        fields = ["username"]
        group_names = user_groups

        def serialize(self, instance, action):
            return (
                {} if instance.username.startswith("quiet") else super().serialize(instance, action)
            )

    try:
        User.objects.create(username="quiet-one")
        User.objects.create(username="loud")
        assert actions(WATCHERS["users"]) == [("create", "loud")]
    finally:
        Quiet.unregister()
    User.objects.create(username="unbound")
    assert received(WATCHERS["users"]) == []


# Inbound


def inbound(binding: type[Binding], **content) -> None:
    binding.consumer(Message(content, "binding.users"))


def test_inbound_actions_run_when_permitted(watchers):
    asked = []

    def has_permission(self, user, action, pk):
        asked.append((type(user), action, pk, self.data))
        return True

    with bound(
        model=User,
        fields=["username", "email", "is_staff"],
        group_names=user_groups,
        has_permission=has_permission,
    ) as binding:
        inbound(binding, action="create", data={"username": "hal", "password": "not bound"})
        user = User.objects.get(username="hal")
        assert user.password == ""
        assert actions(WATCHERS["users"]) == [("create", "hal")]

        inbound(binding, action="update", pk=user.pk, data={"email": "h@example.com"})
        user.refresh_from_db()
        assert (user.username, user.email) == ("hal", "h@example.com")
        assert actions(WATCHERS["users"]) == [("update", "hal")]

        inbound(binding, action="update", pk=user.pk + 100, data={"email": "x@example.com"})
        inbound(binding, action="delete", pk=user.pk)
        assert not User.objects.filter(username="hal").exists()
        assert actions(WATCHERS["users"]) == [("delete", "hal")]
    assert [entry[:3] for entry in asked] == [
        (AnonymousUser, "create", None),
        (AnonymousUser, "update", user.pk),
        (AnonymousUser, "update", user.pk + 100),
        (AnonymousUser, "delete", user.pk),
    ]
    assert asked[1][3] == {"email": "h@example.com"}


def test_inbound_actions_are_dropped_when_refused(watchers):
    with bound(
        model=User,
        fields=["username", "email"],
        group_names=user_groups,
        has_permission=lambda self, user, action, pk: False,
    ) as binding:
        user = User.objects.create(username="ida")
        received(WATCHERS["users"])
        inbound(binding, action="create", data={"username": "jon"})
        inbound(binding, action="update", pk=user.pk, data={"username": "renamed"})
        inbound(binding, action="delete", pk=user.pk)
        assert list(User.objects.values_list("username", flat=True)) == ["ida"]
        assert received(WATCHERS["users"]) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"action": "destroy", "pk": 1}, "the action 'destroy'"),
        ({"action": "update", "data": {}}, "without a pk"),
        ({"action": "create", "data": ["x"]}, "send the fields as an object"),
        ({"pk": 1}, "binding messages are objects"),
    ],
)
def test_malformed_inbound_messages_are_sentences(database, content, fragment):
    with (
        bound(
            model=User,
            fields=["username"],
            group_names=user_groups,
            has_permission=lambda self, user, action, pk: True,
        ) as binding,
        pytest.raises(ValueError, match=fragment),
    ):
        inbound(binding, **content)


def test_inbound_without_has_permission_says_what_to_define(database):
    with (
        bound(model=User, fields=["username"], group_names=user_groups) as binding,
        pytest.raises(NotImplementedError, match=r"has_permission\(user, action, pk\)"),
    ):
        inbound(binding, action="delete", pk=1)
