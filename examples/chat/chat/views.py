"""The demo's pages: sign in by name, the list of rooms, a room."""

from pathlib import Path

from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

import channels_ws
from channels_core import Group

from .forms import NameForm, RoomForm
from .models import Room, room_group

HISTORY = 50
ASSETS = {
    "chat/chat.js": Path(__file__).resolve().parent / "static" / "chat" / "chat.js",
    "chat/chat.css": Path(__file__).resolve().parent / "static" / "chat" / "chat.css",
    # The browser client channels-ws ships.
    "channels/channels.js": Path(channels_ws.__file__).resolve().parent
    / "static"
    / "channels"
    / "channels.js",
}
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css"}


def sign_in(request):
    """Sign in as the user of the name given, made on first use.

    A demo shortcut for a sign-up page: it makes real Django users (with no password) and
    logs in with Django's session, which the WebSocket consumer reads. Names that belong
    to an account with a password (made with ``createsuperuser``, say) are refused.
    """
    form = NameForm(request.POST or None)
    if form.is_valid():
        user, _ = get_user_model().objects.get_or_create(
            username=form.cleaned_data["name"], defaults={"password": "!"}
        )
        if user.has_usable_password():
            form.add_error("name", "That name belongs to an account with a password; pick another.")
        else:
            login(request, user)
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
                target = "index"
            return redirect(target)
    return render(request, "chat/sign_in.html", {"form": form})


@require_POST
def sign_out(request):
    """Log out and go back to the sign-in page."""
    logout(request)
    return redirect("sign_in")


@login_required
def index(request):
    """The rooms so far, and a form to enter one (``?room=name``)."""
    form = RoomForm(request.GET or None)
    if form.is_valid():
        return redirect("room", room=form.cleaned_data["room"])
    rooms = Room.objects.annotate(message_count=Count("messages"))
    return render(request, "chat/index.html", {"form": form, "rooms": rooms})


@login_required
def room(request, room):
    """A room: its latest messages, and the page script that joins it over WebSocket."""
    current = Room.objects.get_or_create(name=room)[0]
    # Where the room's group stands before the messages are read: the page's client recovers
    # from there what is said between this render and its WebSocket's opening.
    position = Group(room_group(room)).history().position
    history = reversed(
        current.messages.select_related("author").order_by("-sent_at", "-id")[:HISTORY]
    )
    since = {room_group(room): list(position)} if position else {}
    return render(
        request,
        "chat/room.html",
        {"room": current, "history": list(history), "since": since},
    )


def asset(request, name):
    """The page script or the style sheet, so the demo needs no other server and no CDN.

    Read whole into one response: Django's ``django.views.static.serve`` answers with a
    streaming ``FileResponse``, which Django's ASGI handler warns about on every request.
    Behind nginx, let it serve ``/static/`` instead (see docs/deploying.md).
    """
    if name not in ASSETS:
        raise Http404(f"No asset named {name!r}.")
    kind = ASSET_TYPES[Path(name).suffix]
    return HttpResponse(ASSETS[name].read_bytes(), content_type=kind)
