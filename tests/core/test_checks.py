"""``manage.py check`` runs the checks start-up makes, and routes on channels no plugin
registers are reported at check and at start-up; real ``manage.py`` and ``channels``
processes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from channels_core.checks import unknown_channels
from channels_core.testing.processes import run, start_process, write_settings

CHANNELS = Path(sys.executable).parent / "channels"
ROUTING = """
from channels_core import route


def consumer(message):
    pass


routes = [
    route("websocket.recieve", consumer),
    route("websocket.receive", consumer),
    route("thumbnails", consumer),
    route("chat.message", consumer),
]
good_routes = [route("thumbnails", consumer)]
"""
CHECKED = re.compile(r"\(channels_core\.([EW]\d{3})\) (.*)")
ENDPOINT = ("--endpoint", "tcp:0:interface=127.0.0.1")


@pytest.fixture
def project(tmp_path):
    """A directory for settings modules, with the routing module ``check_routing``."""
    (tmp_path / "check_routing.py").write_text(ROUTING)
    return tmp_path


def check(project: Path, settings: str) -> tuple[int, list[tuple[str, str]]]:
    """``manage.py check``'s exit status and its Channels messages, as (id, sentence)."""
    result = run(
        [sys.executable, "-m", "django", "check", "--pythonpath", project],
        env={"DJANGO_SETTINGS_MODULE": settings},
    )
    found = [match.groups() for match in map(CHECKED.search, result.stderr.splitlines()) if match]
    return result.returncode, found


GOOD_LAYER = {"BACKEND": "memory", "ROUTING": "check_routing.good_routes"}


@pytest.mark.parametrize(
    ("settings", "code", "start"),
    [
        (
            {"CHANNEL_LAYERS": {"default": {**GOOD_LAYER, "BACKEND": "memroy"}}},
            "E001",
            "BACKEND 'memroy' is not an installed channel layer; installed layers: ",
        ),
        (
            {"CHANNELS": {"PROTOCOLS": ["http", "gopher"]}},
            "E001",
            "CHANNELS['PROTOCOLS'] enables 'gopher', which is not installed: pip install ",
        ),
        (
            {"CHANNEL_LAYERS": {"default": {**GOOD_LAYER, "ROUTING": "check_routing.nothing"}}},
            "E001",
            "CHANNEL_LAYERS['default']['ROUTING'] 'check_routing.nothing' cannot be imported",
        ),
        (
            {"CHANNEL_LAYERS": {"default": {"BACKEND": "memory"}}},
            "E002",
            "CHANNEL_LAYERS['default'] has no 'ROUTING'; set it to the dotted path",
        ),
        (
            {"CHANNEL_LAYERS": {"default": {**GOOD_LAYER, "CONFIG": {"hosts": []}}}},
            "E001",
            "CHANNEL_LAYERS['default']['CONFIG'] has the key 'hosts', which the 'memory' layer",
        ),
        (
            {"CHANNELS": {"OPTIONS": {"http": {"http_timeout": -1}}}},
            "E001",
            "CHANNELS['OPTIONS']['http']['http_timeout'] is -1; ",
        ),
    ],
    ids=["backend", "protocol", "bad-routing", "no-routing", "config-key", "option"],
)
def test_check_says_what_start_up_says(project, settings, code, start):
    write_settings(project, "broken", **{"CHANNEL_LAYERS": {"default": GOOD_LAYER}, **settings})
    status, found = check(project, "broken")
    assert status == 1
    assert len(found) == 1, found
    assert found[0][0] == code
    assert found[0][1].startswith(start)

    served = run(
        [CHANNELS, "-v", "0", "--pythonpath", project, "--settings", "broken", "serve", *ENDPOINT]
    )
    assert served.returncode == 1
    assert served.stderr.strip() == found[0][1]


def test_check_reports_each_problem_once(project):
    write_settings(
        project,
        "many_problems",
        CHANNEL_LAYERS={
            "default": {"BACKEND": "memroy", "ROUTING": "check_routing.nothing"},
            "second": {"BACKEND": "memory", "CONFIG": {"hosts": []}},
        },
        CHANNELS={"PROTOCOLS": ["http", "gopher"]},
    )
    status, found = check(project, "many_problems")
    assert status == 1
    assert [code for code, _ in found] == ["E001"] * 4
    starts = [
        "BACKEND 'memroy' is not",
        "CHANNELS['PROTOCOLS'] enables 'gopher'",
        "CHANNEL_LAYERS['default']['ROUTING'] 'check_routing.nothing' cannot be imported",
        "CHANNEL_LAYERS['second']['CONFIG'] has the key 'hosts'",
    ]
    for start in starts:
        assert sum(sentence.startswith(start) for _, sentence in found) == 1, (start, found)


WARNING = (
    "CHANNEL_LAYERS['default']['ROUTING'] routes 'websocket.recieve', which no installed plugin "
    "registers: did you mean 'websocket.receive'? (channels plugins lists the registered "
    "channels.)"
)


def test_a_route_on_an_unregistered_channel_is_a_warning_at_check_and_start_up(project, tmp_path):
    layer = {
        "BACKEND": "ipc",
        "CONFIG": {"path": str(tmp_path / "ipc")},
        "ROUTING": "check_routing.routes",
    }
    write_settings(project, "misspelt", CHANNEL_LAYERS={"default": layer})
    # manage.py check: a warning, which does not fail it; the project's own channels
    # (thumbnails, chat.message) are not reported.
    status, found = check(project, "misspelt")
    assert status == 0
    assert found == [("W001", WARNING)]

    command = [CHANNELS, "--pythonpath", project, "--settings", "misspelt"]
    with start_process([*command, "serve", *ENDPOINT]) as server:
        server.wait_for_line("Channels server ready")
        assert server.terminate() == 0
    with start_process([*command, "worker"]) as worker:
        worker.wait_for_line("Worker listening on")
        assert worker.terminate() == 0
    for process in (server, worker):
        logged = [line for line in process.lines if "channels_core.checks" in line]
        assert len(logged) == 1, process.output
        assert logged[0].endswith(f" WARNING channels_core.checks: {WARNING}")


REGISTERED = {
    "websocket.connect",
    "websocket.receive",
    "websocket.disconnect",
    "websocket.send!",
    "http.request",
    "http.response!",
    "udp.receive",
    "udp.send!",
}


@pytest.mark.parametrize(
    ("routed", "closest"),
    [
        ("websocket.recieve", "websocket.receive"),  # a typo
        ("websockets.receive", "websocket.receive"),  # outside the family, but close
        ("http.requests", "http.request"),
        ("websocket.message", "websocket.receive"),  # in a registered family: not theirs
        ("udp.send", "udp.receive"),  # reply prefixes are never suggested
        ("websocket.receive", None),  # registered
        ("websocket.send!abc", None),  # a reply channel under a registered prefix
        ("thumbnails", None),  # the project's own channels
        ("chat.message", None),
        ("ask.request", None),  # 0.70 alike to http.request: below the cut-off
        ("sms.receive", None),  # a family no installed plugin registers
    ],
)
def test_which_routed_channels_are_reported(routed, closest):
    found = unknown_channels([routed], REGISTERED)
    assert found == ({} if closest is None else {routed: closest})
