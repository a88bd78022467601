"""The demo's pages: sign in by name, the list of rooms, a room."""

from pathlib import Path

from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .forms import NameForm, RoomForm
from .models import Room

HISTORY = 50
ASSETS = Path(__file__).resolve().parent / "static" / "chat"
ASSET_TYPES = {"chat.js": "text/javascript", "chat.css": "text/css"}


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
    history = reversed(
        current.messages.select_related("author").order_by("-sent_at", "-id")[:HISTORY]
    )
    return render(request, "chat/room.html", {"room": current, "history": list(history)})


def asset(request, name):
    """The page script or the style sheet, so the demo needs no other server and no CDN.

    Read whole into one response: Django's ``django.views.static.serve`` answers with a
    streaming ``FileResponse``, which Django's ASGI handler warns about on every request.
    Behind nginx, let it serve ``/static/`` instead (see docs/deploying.md).
    """
    if name not in ASSET_TYPES:
        raise Http404(f"No asset named {name!r}.")
    return HttpResponse((ASSETS / name).read_bytes(), content_type=ASSET_TYPES[name])
