"""Data binding across real processes: notes saved by ``manage.py shell`` reach the WebSocket
clients of a ``channels serve`` process, and clients create, update and delete notes.

The test project (``binding_project``) keeps its SQLite database, its session files and its
IPC layer in one temporary directory, which the server and every saving process share. The
``NoteBinding`` lives in ``notes/bindings.py``, which the ``channels_core`` app imports in
every process: the saving processes here never import it themselves.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from channels_core.testing.processes import run, start_process
from channels_ws.testing import WebSocketClient

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parent / "binding_project"
LISTENING = r"http listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.file import SessionStore
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
user = get_user_model().objects.create_user("alice", password="x")
session = SessionStore()
session["_auth_user_id"] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def shell(env: dict, code: str) -> str:
    """Run *code* in ``manage.py shell -c`` of the test project (``python -m django``, the
    same command), in a process of its own; its output."""
    preamble = "from django.db import transaction\nfrom notes.models import Note\n"
    result = run(
        [
            sys.executable,
            "-m",
            "django",
            "shell",
            "-v",
            "0",
            "-c",
            preamble + textwrap.dedent(code),
        ],
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def project_env(tmp_path_factory):
    """The environment of the project's processes: a migrated database and alice's session."""
    data = tmp_path_factory.mktemp("binding_project")
    env = {
        "BINDING_DATA": str(data),
        "DJANGO_SETTINGS_MODULE": "binding_project.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }
    env["ALICE_SESSION"] = shell(env, SETUP).strip()
    return env


@pytest.fixture(scope="module")
def server(project_env):
    """``channels serve`` of the project, on the shared IPC layer."""
    with start_process(
        [
            sys.executable,
            "-c",
            "import sys; from channels_core.cli import main; sys.exit(main())",
            "serve",
            "--endpoint",
            "tcp:0:interface=127.0.0.1",
        ],
        env=project_env,
    ) as process:
        process.port = int(process.wait_for_line(LISTENING).group("port"))
        yield process


def connect(server, topic: str, session: str | None = None) -> WebSocketClient:
    """A socket in the group ``notes-<topic>``; signed in with *session*, anonymous without.
    The demultiplexer joins the group before it accepts, so the group is joined on return."""
    headers = [("Cookie", f"sessionid={session}")] if session else []
    return WebSocketClient.connect(server.port, f"/notes/{topic}/", headers=headers)


def frame(client: WebSocketClient) -> dict:
    """The next frame, decoded."""
    return json.loads(client.receive())


def payload(client: WebSocketClient) -> dict:
    """The payload of the next frame, which must be on the notes stream."""
    received = frame(client)
    assert received["stream"] == "notes", received
    return received["payload"]


def send(client: WebSocketClient, stream: str, body: dict) -> None:
    client.send_text(json.dumps({"stream": stream, "payload": body}))


def round_trip(client: WebSocketClient) -> None:
    """An echo on the connection's echo stream: everything the client sent before has been
    handled (a connection's messages run in order), and nothing else arrived meanwhile."""
    send(client, "echo", {"n": 1})
    assert frame(client) == {"stream": "echo", "payload": {"echo": {"n": 1}}}


def test_saves_in_another_process_reach_the_groups_the_note_is_in(server, project_env):
    with connect(server, "red") as red, connect(server, "blue") as blue:
        pk = shell(
            project_env,
            """
            note = Note.objects.create(topic="red", title="first", secret="s3cret")
            note.title = "renamed"
            note.save()
            note.topic = "blue"
            note.save()
            print(note.pk)
            note.delete()
            """,
        ).strip()
        pk = int(pk)
        assert frame(red) == {
            "stream": "notes",
            "payload": {
                "action": "create",
                "pk": pk,
                "data": {"topic": "red", "title": "first", "body": ""},
                "model": "notes.note",
            },
        }
        update = payload(red)
        assert (update["action"], update["pk"], update["data"]["title"]) == (
            "update",
            pk,
            "renamed",
        )
        # Moved to another topic: gone for red, new for blue.
        moved_out = payload(red)
        assert (moved_out["action"], moved_out["data"]["topic"]) == ("delete", "blue")
        moved_in = payload(blue)
        assert (moved_in["action"], moved_in["pk"], moved_in["data"]["title"]) == (
            "create",
            pk,
            "renamed",
        )
        deleted = payload(blue)
        assert (deleted["action"], deleted["pk"]) == ("delete", pk)
        round_trip(red)
        round_trip(blue)


def test_a_rolled_back_save_sends_nothing(server, project_env):
    with connect(server, "green") as green:
        shell(
            project_env,
            """
            with transaction.atomic():
                Note.objects.create(topic="green", title="rolled back")
                transaction.set_rollback(True)
            try:
                with transaction.atomic():
                    Note.objects.create(topic="green", title="raised")
                    raise RuntimeError
            except RuntimeError:
                pass
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        Note.objects.create(topic="green", title="savepoint rolled back")
                        raise RuntimeError
                except RuntimeError:
                    pass
                Note.objects.create(topic="green", title="committed")
            """,
        )
        created = payload(green)
        assert (created["action"], created["data"]["title"]) == ("create", "committed")
        round_trip(green)
    titles = shell(
        project_env,
        "print(list(Note.objects.filter(topic='green').values_list('title', flat=True)))",
    )
    assert titles.strip() == "['committed']"


def test_clients_with_permission_create_update_and_delete(server, project_env):
    alice_session = project_env["ALICE_SESSION"]
    with connect(server, "shared", alice_session) as alice, connect(server, "shared") as watcher:
        send(
            alice,
            "notes",
            {"action": "create", "data": {"topic": "shared", "title": "from ws", "secret": "x"}},
        )
        created = payload(watcher)
        assert created["action"] == "create"
        assert created["data"] == {"topic": "shared", "title": "from ws", "body": ""}
        assert payload(alice) == created
        pk = created["pk"]
        stored = shell(project_env, f"print(Note.objects.get(pk={pk}).secret == '')")
        assert stored.strip() == "True", "an excluded field was written by a client"

        send(alice, "notes", {"action": "update", "pk": pk, "data": {"body": "edited"}})
        updated = payload(watcher)
        assert (updated["action"], updated["pk"]) == ("update", pk)
        assert updated["data"] == {"topic": "shared", "title": "from ws", "body": "edited"}
        assert payload(alice) == updated

        send(alice, "notes", {"action": "delete", "pk": pk})
        deleted = payload(watcher)
        assert (deleted["action"], deleted["pk"]) == ("delete", pk)
        assert payload(alice) == deleted
    assert shell(project_env, f"print(Note.objects.filter(pk={pk}).exists())").strip() == "False"


def test_clients_without_permission_change_nothing(server, project_env):
    alice_session = project_env["ALICE_SESSION"]
    with connect(server, "locked") as anonymous, connect(server, "locked", alice_session) as alice:
        pk = int(shell(project_env, "print(Note.objects.create(topic='locked', title='keep').pk)"))
        assert payload(anonymous)["action"] == "create"
        assert payload(alice)["action"] == "create"

        send(anonymous, "notes", {"action": "create", "data": {"topic": "locked", "title": "no"}})
        send(anonymous, "notes", {"action": "update", "pk": pk, "data": {"title": "changed"}})
        send(anonymous, "notes", {"action": "delete", "pk": pk})
        # Handled, in order, before the echo; and no change was sent to the group.
        round_trip(anonymous)
        round_trip(alice)
    stored = shell(
        project_env,
        "print(list(Note.objects.filter(topic='locked').values_list('title', flat=True)))",
    )
    assert stored.strip() == "['keep']"


def test_a_change_is_sent_when_its_transaction_commits(server, project_env, tmp_path):
    go = tmp_path / "commit"
    saving = f"""
        import pathlib, time
        from django.db import transaction
        from notes.models import Note
        with transaction.atomic():
            Note.objects.create(topic="slow", title="waited")
            print("saved", flush=True)
            while not pathlib.Path({str(go)!r}).exists():
                time.sleep(0.05)
        print("committed", flush=True)
    """
    command = [sys.executable, "-m", "django", "shell", "-v", "0", "-c", textwrap.dedent(saving)]
    with connect(server, "slow") as slow, start_process(command, env=project_env) as saver:
        saver.wait_for_line("saved")
        # Saved, not committed: the echo comes back with no note before it.
        round_trip(slow)
        go.touch()
        saver.wait_for_line("committed")
        created = payload(slow)
        assert (created["action"], created["data"]["title"]) == ("create", "waited")
        assert saver.wait() == 0
