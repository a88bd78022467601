"""The demo's two forms: pick a name, pick a room."""

from django import forms
from django.core.validators import RegexValidator

from .models import ROOM_PATTERN


class NameForm(forms.Form):
    """Sign in by name: the demo's stand-in for a real sign-up."""

    name = forms.CharField(
        max_length=30,
        validators=[
            RegexValidator(
                r"^[\w.@+-]+\Z",
                "A name is letters, digits and @ . + - _ only, without spaces; try another.",
            )
        ],
    )


class RoomForm(forms.Form):
    """The room to enter."""

    room = forms.CharField(
        max_length=50,
        validators=[
            RegexValidator(
                rf"^{ROOM_PATTERN}\Z",
                "A room name is lower-case letters, digits and dashes, such as 'lobby' or "
                "'team-1'.",
            )
        ],
    )
