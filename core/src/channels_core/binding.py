"""Data binding: Django model changes become group messages, and messages become changes.

Channels 1's ``channels.binding``::

    class NoteBinding(Binding):
        model = "notes.Note"
        stream = "notes"
        fields = ["title", "body"]

        def group_names(self, instance):
            return [f"notes-{instance.topic}"]

        def has_permission(self, user, action, pk):
            return user.is_authenticated

**Outbound.** A save or delete of the model (through its ``save()``, ``delete()`` or a
queryset's ``delete()``: what sends Django's model signals) sends a message to the groups
that :meth:`Binding.group_names` names. Which action each group gets follows the groups
before and after the change: ``update`` for a group the instance stays in, ``create`` for a
group it enters (a new instance enters all of its groups), ``delete`` for a group it leaves
(a deleted instance leaves all of them). The messages go once the transaction commits, so a
rolled-back save sends nothing. The payload is ``{"action", "pk", "data", "model"}``, with
the serialized ``fields`` (or every field but ``exclude``) in ``data``; :meth:`Binding.encode`
wraps it for the wire (``{"stream": stream, "payload": payload}`` here; a JSON text frame in
:class:`channels_ws.WebsocketBinding`).

**Inbound.** :meth:`Binding.consumer` is a consumer: a message ``{"action", "pk", "data"}``
creates, updates or deletes an instance when :meth:`Binding.has_permission` allows it, and
is dropped when it does not. Only the bound fields that are editable can be written.

A binding is registered when the ``channels_core`` app is ready, or when it is defined
after that; the app imports the ``bindings`` module of every installed app, so a binding
defined there (or in ``models.py``) works in every process that saves the model: servers,
workers, management commands. A binding with ``model = None`` in its own body is abstract.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

from asgiref.sync import async_to_sync
from django.apps import apps
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.utils.module_loading import autodiscover_modules

from .exceptions import ImproperlyConfigured
from .group import Group
from .message import Message

logger = logging.getLogger(__name__)

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ACTIONS = (CREATE, UPDATE, DELETE)
ALL_FIELDS = "__all__"

# The groups each binding saw an instance in before a change, kept on the instance from the
# pre_ signal to the post_ one.
_GROUPS_BEFORE = "_channels_binding_groups"

_pending: list[type[Binding]] = []
_registering = False


def register_bindings() -> None:
    """Register every binding defined so far, import the ``bindings`` module of each
    installed app, and register later bindings as soon as they are defined.

    The ``channels_core`` app calls it from ``ready()``.
    """
    global _registering
    _registering = True
    while _pending:
        _pending.pop(0).register()
    autodiscover_modules("bindings")


async def _send_to_groups(messages: list[tuple[Group, dict]]) -> None:
    for group, message in messages:
        await group.asend(message)


class Binding:
    """A two-way binding of a Django model to groups: subclass it, one per model and format.

    Outbound needs :attr:`model`, :attr:`stream`, :attr:`fields` or :attr:`exclude`, and
    :meth:`group_names`; inbound also needs :meth:`has_permission` and a route (or a
    demultiplexer stream) to :meth:`consumer`. Override :meth:`serialize`, :meth:`encode`,
    :meth:`deserialize`, :meth:`create`, :meth:`update` or :meth:`delete` for other formats
    or rules. An instance handles one change or one message: ``self.instance`` outbound,
    ``self.message``, ``self.kwargs``, ``self.user``, ``self.action``, ``self.pk`` and
    ``self.data`` inbound.
    """

    #: The model class, or its ``"app_label.ModelName"``.
    model: ClassVar[type[models.Model] | str | None] = None
    #: The name clients know this binding's messages by (the demultiplexer's stream).
    stream: ClassVar[str | None] = None
    #: The fields to send and accept: names, or ``["__all__"]``.
    fields: ClassVar[Iterable[str] | str | None] = None
    #: Fields never sent or accepted (with ``fields``, or alone meaning every other field).
    exclude: ClassVar[Iterable[str] | None] = None
    #: Inbound: give :meth:`consumer` a ``message.channel_session``.
    channel_session: ClassVar[bool] = False

    #: Set by :meth:`register`: the model's ``app_label.modelname``.
    model_label: ClassVar[str]
    #: Set by :meth:`register`: the names of the fields sent and accepted.
    field_names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model" in cls.__dict__ and cls.model is None:
            return
        if _registering:
            cls.register()
        else:
            _pending.append(cls)

    # Registration

    @classmethod
    def register(cls) -> None:
        """Resolve the model and the field lists, then connect the model's signals."""
        model = cls._resolve_model()
        cls.model = model
        cls.model_label = model._meta.label_lower
        cls.field_names = cls._resolve_fields(model)
        if not cls.stream:
            raise ImproperlyConfigured(
                f"{cls.__qualname__} has no stream; set stream to the name its messages go "
                f'out under, such as stream = "{model._meta.model_name}".'
            )
        pre_save.connect(cls.pre_save_receiver, sender=model)
        post_save.connect(cls.post_save_receiver, sender=model)
        pre_delete.connect(cls.pre_delete_receiver, sender=model)
        post_delete.connect(cls.post_delete_receiver, sender=model)

    @classmethod
    def unregister(cls) -> None:
        """Disconnect the model's signals: the binding sends nothing more (for tests)."""
        model = cls.model
        if isinstance(model, type):
            pre_save.disconnect(cls.pre_save_receiver, sender=model)
            post_save.disconnect(cls.post_save_receiver, sender=model)
            pre_delete.disconnect(cls.pre_delete_receiver, sender=model)
            post_delete.disconnect(cls.post_delete_receiver, sender=model)
        if cls in _pending:
            _pending.remove(cls)

    @classmethod
    def _resolve_model(cls) -> type[models.Model]:
        model = cls.model
        if model is None:
            raise ImproperlyConfigured(
                f"{cls.__qualname__} has no model; set model to a model class or its "
                '"app_label.ModelName" (or model = None in the class body of an abstract '
                "binding)."
            )
        if isinstance(model, str):
            try:
                return apps.get_model(model)
            except (LookupError, ValueError) as error:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.model is {model!r}, which names no installed model "
                    f'({error}); use "app_label.ModelName" of an app in INSTALLED_APPS.'
                ) from error
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.model is {model!r}, not a Django model; set it to a model "
                'class or its "app_label.ModelName".'
            )
        return model

    @classmethod
    def _resolve_fields(cls, model: type[models.Model]) -> tuple[str, ...]:
        if cls.fields is None and cls.exclude is None:
            raise ImproperlyConfigured(
                f"{cls.__qualname__} sets neither fields nor exclude; list the fields to send "
                '(fields = ["title", ...]), send every field (fields = ["__all__"]), or name '
                'those to leave out (exclude = ["secret"]).'
            )
        opts = model._meta
        available = [
            field.name for field in (*opts.concrete_fields, *opts.many_to_many) if field.serialize
        ]
        known = {*available, opts.pk.name, "pk"}
        fields = [cls.fields] if isinstance(cls.fields, str) else list(cls.fields or ())
        exclude = [cls.exclude] if isinstance(cls.exclude, str) else list(cls.exclude or ())
        for attribute, names in (("fields", fields), ("exclude", exclude)):
            unknown = [name for name in names if name not in known and name != ALL_FIELDS]
            if unknown:
                raise ImproperlyConfigured(
                    f"{cls.__qualname__}.{attribute} names {', '.join(map(repr, unknown))}, "
                    f"which {opts.label} does not have; its fields are "
                    f"{', '.join(available)}."
                )
        chosen = available if cls.fields is None or ALL_FIELDS in fields else fields
        return tuple(name for name in chosen if name in available and name not in exclude)

    # Outbound

    def group_names(self, instance: models.Model) -> Iterable[str]:
        """The groups *instance* belongs in; it is called before and after each change, and
        the difference decides between ``create``, ``update`` and ``delete``. Override it
        (a classmethod, as in Channels 1, works too)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define group_names(instance), returning the "
            "names of the groups that see the instance."
        )

    @classmethod
    def pre_save_receiver(
        cls, instance: models.Model, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
    ) -> None:
        """``pre_save``: remember the groups the stored instance is in (none when new)."""
        stored = None
        if not instance._state.adding and instance.pk is not None:
            stored = type(instance)._base_manager.using(using).filter(pk=instance.pk).first()
        cls._remember_groups(instance, set() if stored is None else cls()._groups(stored))

    @classmethod
    def pre_delete_receiver(cls, instance: models.Model, **kwargs: Any) -> None:
        """``pre_delete``: remember the groups the instance is in."""
        cls._remember_groups(instance, cls()._groups(instance))

    @classmethod
    def post_save_receiver(
        cls, instance: models.Model, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
    ) -> None:
        """``post_save``: send what the change means to each group, on commit."""
        binding = cls()
        binding.send_changes(instance, binding._groups(instance), using)

    @classmethod
    def post_delete_receiver(
        cls, instance: models.Model, using: str = DEFAULT_DB_ALIAS, **kwargs: Any
    ) -> None:
        """``post_delete``: send ``delete`` to the instance's groups, on commit."""
        cls().send_changes(instance, set(), using)

    @classmethod
    def _remember_groups(cls, instance: models.Model, groups: set[str]) -> None:
        instance.__dict__.setdefault(_GROUPS_BEFORE, {})[cls] = groups

    def _groups(self, instance: models.Model) -> set[str]:
        return set(self.group_names(instance))

    def send_changes(self, instance: models.Model, groups: set[str], using: str) -> None:
        """Serialize *instance* now, in *groups* after its change, and send each group its
        action once *using* commits: ``delete`` where it left, ``update`` where it stayed,
        ``create`` where it entered."""
        remembered = instance.__dict__.get(_GROUPS_BEFORE, {})
        before = remembered.pop(type(self), set())
        if not remembered:
            instance.__dict__.pop(_GROUPS_BEFORE, None)
        self.instance = instance
        messages = []
        for action, names in (
            (DELETE, before - groups),
            (UPDATE, before & groups),
            (CREATE, groups - before),
        ):
            if not names:
                continue
            payload = self.serialize(instance, action)
            if payload:
                message = self.encode(self.stream, payload)
                messages.extend((Group(name), message) for name in sorted(names))
        if not messages:
            return

        def send_binding_messages() -> None:
            async_to_sync(_send_to_groups)(messages)

        # robust: the row is committed; a layer that fails must not make the save look failed.
        transaction.on_commit(send_binding_messages, using=using, robust=True)

    def serialize(self, instance: models.Model, action: str) -> dict:
        """The payload for *action* on *instance*: ``{"action", "pk", "data", "model"}``
        (an empty dict sends nothing)."""
        return {
            "action": action,
            "pk": json.loads(json.dumps(instance.pk, cls=DjangoJSONEncoder)),
            "data": self.serialize_data(instance),
            "model": self.model_label,
        }

    def serialize_data(self, instance: models.Model) -> dict:
        """The bound fields of *instance*, JSON- and msgpack-safe (as Django's JSON
        serializer writes them: dates as ISO strings, related objects as their keys)."""
        text = serializers.serialize("json", [instance], fields=self.field_names)
        return json.loads(text)[0]["fields"]

    @classmethod
    def encode(cls, stream: str, payload: dict) -> dict:
        """The group message for *payload*: ``{"stream": stream, "payload": payload}``."""
        return {"stream": stream, "payload": payload}

    # Inbound

    @classmethod
    def consumer(cls, message: Message, **kwargs: Any) -> None:
        """A consumer to route (or map to a demultiplexer stream): runs the message's action."""
        cls.get_handler()(message, **kwargs)

    @classmethod
    def get_handler(cls) -> Any:
        """:meth:`trigger_inbound`, with the session its flags ask for."""
        if cls.channel_session:
            from .sessions import channel_session

            return channel_session(cls.trigger_inbound)
        return cls.trigger_inbound

    @classmethod
    def trigger_inbound(cls, message: Message, **kwargs: Any) -> None:
        """Decode *message* and run its action for ``message.user`` (anonymous without
        one) if :meth:`has_permission` allows."""
        from django.contrib.auth.models import AnonymousUser

        self = cls()
        self.message = message
        self.kwargs = kwargs
        self.action, self.pk, self.data = self.deserialize(message)
        self.user = getattr(message, "user", None) or AnonymousUser()
        self.run_action(self.action, self.pk, self.data)

    def deserialize(self, message: Message) -> tuple[str, Any, Any]:
        """``(action, pk, data)`` of *message*: here its ``action``, ``pk`` and ``data`` keys."""
        return self._unpack(message.content)

    def _unpack(self, body: Any) -> tuple[str, Any, Any]:
        if not isinstance(body, dict) or "action" not in body:
            raise ValueError(
                f"{type(self).__qualname__} got {body!r:.80}; binding messages are objects "
                '{"action": "create"|"update"|"delete", "pk": ..., "data": {...}}.'
            )
        return body["action"], body.get("pk"), body.get("data")

    def has_permission(self, user: Any, action: str, pk: Any) -> bool:
        """Whether *user* (``AnonymousUser`` when nobody is signed in) may do *action*
        (``"create"``, ``"update"`` or ``"delete"``) to the instance *pk* (None for
        ``create``; ``self.data`` holds the fields sent). Override it."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define has_permission(user, action, pk) to "
            "accept changes from clients."
        )

    def run_action(self, action: str, pk: Any, data: Any) -> None:
        """Check *action* and its arguments, then :meth:`create`, :meth:`update` or
        :meth:`delete` if :meth:`has_permission` allows; drop the message if not."""
        name = type(self).__qualname__
        if action not in ACTIONS:
            raise ValueError(
                f"{name} got the action {action!r}; use 'create', 'update' or 'delete'."
            )
        if action != CREATE and pk is None:
            raise ValueError(f"{name} got {action!r} without a pk; say which instance.")
        if action != DELETE and not isinstance(data, dict):
            raise ValueError(
                f"{name} got {action!r} with data {data!r:.80}; send the fields as an object."
            )
        if not self.has_permission(self.user, action, pk):
            logger.debug("%s: %s of %r refused to %s.", name, action, pk, self.user)
            return
        if action == CREATE:
            self.create(data)
        elif action == UPDATE:
            self.update(pk, data)
        else:
            self.delete(pk)

    def create(self, data: dict) -> None:
        """Create an instance from the writable fields of *data*."""
        hydrated = self._hydrate(None, self.writable_data(data))
        hydrated.object.save()
        for name, values in hydrated.m2m_data.items():
            getattr(hydrated.object, name).set(values)

    def update(self, pk: Any, data: dict) -> None:
        """Set the writable fields of *data* on instance *pk* and save those (nothing when
        it does not exist)."""
        instance = self.model._default_manager.filter(pk=pk).first()
        if instance is None:
            logger.debug("%s: no %s %r to update.", type(self).__qualname__, self.model_label, pk)
            return
        fields = self.writable_data(data)
        hydrated = self._hydrate(instance.pk, fields)
        changed = []
        for field in instance._meta.concrete_fields:
            if field.name in fields:
                setattr(instance, field.attname, getattr(hydrated.object, field.attname))
                changed.append(field.name)
        for name, values in hydrated.m2m_data.items():
            getattr(instance, name).set(values)
        instance.save(update_fields=changed or None)

    def delete(self, pk: Any) -> None:
        """Delete instance *pk* (nothing when it does not exist)."""
        self.model._default_manager.filter(pk=pk).delete()

    def writable_data(self, data: dict) -> dict:
        """The items of *data* that clients may set: bound fields that are editable."""
        opts = self.model._meta
        return {
            name: value
            for name, value in data.items()
            if name in self.field_names and opts.get_field(name).editable
        }

    def _hydrate(self, pk: Any, fields: dict) -> Any:
        """*fields* converted by Django's deserializer: a ``DeserializedObject``."""
        record = {"model": self.model_label, "pk": pk, "fields": fields}
        return next(serializers.deserialize("python", [record]))


__all__ = ["ACTIONS", "CREATE", "DELETE", "UPDATE", "Binding", "register_bindings"]
