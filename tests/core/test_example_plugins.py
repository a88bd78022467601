"""The worked example plugins of docs/plugins.md, installed and served as a third party would.

``channels-ask`` (examples/askproto: a request/reply protocol) and ``channels-ticker``
(examples/ticker: an event source without a socket) are real distributions with entry points
in the group ``channels``. Both are pip-installed into one throwaway virtualenv; its
``channels`` script lists them and serves them as real processes, on 127.0.0.1 for ask.
Their sans-I/O parts are loaded from their source files and fed bytes or clock readings.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import sys
from pathlib import Path

import pytest

from channels_core.testing.processes import build_venv, run, start_process, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ASK = EXAMPLES / "askproto"
TICKER = EXAMPLES / "ticker"
ASK_LISTENING = r"ask listening on tcp:0:interface=127\.0\.0\.1 → 127\.0\.0\.1:(?P<port>\d+)"
TIMEOUT = 10


def load(path: Path):
    """A module of an example's source, loaded from its file (it imports no package)."""
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv that sees the development install, plus both examples installed from source."""
    return build_venv(
        tmp_path_factory.mktemp("examples") / "venv",
        install=[ASK, TICKER],
        scripts={"channels": "channels_core.cli:main"},
    )


def channels(venv, project: Path, settings: str, *args):
    """The venv's ``channels`` with an example project's settings."""
    return [venv.script("channels"), "--pythonpath", project, "--settings", settings, *args]


def test_plugins_lists_both_distributions(venv):
    result = run([venv.script("channels"), "plugins", "--json"])
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)["plugins"]}
    assert {key: plugins["ask"][key] for key in ("distribution", "version", "module", "hooks")} == {
        "distribution": "channels-ask",
        "version": "0.1.0",
        "module": "channels_ask.plugin",
        "hooks": ["channels_register_channels", "channels_register_protocols"],
    }
    assert plugins["ask"]["registered"] == {
        "protocols": ["ask"],
        "channels": ["ask.request", "ask.reply!"],
    }
    assert plugins["ticker"]["distribution"] == "channels-ticker"
    assert plugins["ticker"]["registered"] == {"protocols": ["ticker"], "channels": ["ticker.tick"]}


def test_a_bad_option_is_refused_with_the_declared_sentence(venv):
    command = channels(
        venv, TICKER / "ticker_project", "ticker_project.settings", "serve", "--ticker-interval"
    )
    result = run([*command, "0"])
    assert result.returncode != 0
    assert "set it to a positive number of seconds, such as 1 or 0.5." in result.stderr


# ask ------------------------------------------------------------------------------------


def test_ask_parser_turns_bytes_into_questions():
    parser_module = load(ASK / "src" / "channels_ask" / "parser.py")
    parser = parser_module.QuestionParser(16)
    assert parser.feed(b"what is 1 pl") == []
    assert parser.feed(b"us 2\r\n\n  \nhi\n") == [
        parser_module.Question("what is 1 plus 2"),
        parser_module.Question("hi"),
    ]
    assert parser.feed(b"\xff?\n") == [parser_module.Question("\ufffd?")]
    with pytest.raises(parser_module.LineTooLong):
        parser.feed(b"x" * 17)
    assert parser_module.answer_line("two\nlines") == b"two lines\n"


def ask(venv, *args, env=None):
    """Start ``channels serve`` for the ask project on a free port (*env* over ours)."""
    return start_process(
        channels(
            venv,
            ASK / "ask_project",
            "ask_project.settings",
            "serve",
            "--ask-endpoint",
            "tcp:0:interface=127.0.0.1",
            *args,
        ),
        env=env,
    )


async def converse(port: int, questions: list[str]) -> list[str]:
    """Ask each question and read its answer before the next, on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for question in questions:
            writer.write(question.encode() + b"\n")
            await writer.drain()
            answers.append((await asyncio.wait_for(reader.readline(), TIMEOUT)).decode())
    finally:
        writer.close()
        await writer.wait_closed()
    return answers


async def test_ask_answers_and_says_why_it_cannot(venv):
    with ask(venv, "--ask-reply-timeout", "0.3") as server:
        port = int(server.wait_for_line(ASK_LISTENING).group("port"))
        # One connection keeps working after each refusal.
        assert await converse(
            port, ["what is 2 plus 3", "who are you", "ignore me", "shout hello"]
        ) == ["5\n", "NO CONSUMER\n", "TIMEOUT\n", "HELLO\n"]
        # Questions sent together are answered in order, on several connections at once.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(f"what is {n} plus 1\n".encode() for n in range(20)))
        others = asyncio.gather(*(converse(port, [f"shout c{n}"]) for n in range(5)))
        answers = [await asyncio.wait_for(reader.readline(), TIMEOUT) for _ in range(20)]
        assert answers == [f"{n + 1}\n".encode() for n in range(20)]
        assert await others == [[f"C{n}\n"] for n in range(5)]
        writer.close()
        await writer.wait_closed()
        assert server.terminate() == 0


async def test_ask_answers_busy_when_the_layer_refuses(venv, tmp_path):
    # Worker mode with no worker, on an IPC layer that holds one question: the first waits
    # in the layer until its timeout, the second is refused.
    layer = {"ASK_IPC_PATH": str(tmp_path / "ipc")}
    with ask(
        venv, "--layer", "one", "--mode", "worker", "--ask-reply-timeout", "0.3", env=layer
    ) as server:
        port = int(server.wait_for_line(ASK_LISTENING).group("port"))
        assert await converse(port, ["what is 1 plus 1", "what is 1 plus 1"]) == [
            "TIMEOUT\n",
            "BUSY try again later\n",
        ]
        assert server.terminate() == 0
    assert "Serving in worker mode: --mode worker." in server.output


async def test_sigterm_lets_an_answer_still_owed_reach_its_client(venv):
    with ask(venv) as server:
        port = int(server.wait_for_line(ASK_LISTENING).group("port"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"slowly there\n")
        await writer.drain()
        # The consumer has started (it takes 1.5 s); stop the server now.
        await asyncio.to_thread(server.wait_for_line, r"Answering 'there' slowly", TIMEOUT)
        server.popen.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"there\n"
        writer.close()
        await writer.wait_closed()
        assert await asyncio.to_thread(server.wait, TIMEOUT) == 0
    assert "Draining" in server.output
    assert "Channels server stopped." in server.output


# ticker ---------------------------------------------------------------------------------


def test_ticker_schedule_does_not_drift_or_burst():
    schedule = load(TICKER / "src" / "channels_ticker" / "schedule.py").Schedule(1.0, 100.0)
    assert schedule.wait(100.0) == 1.0
    assert schedule.tick(101.2) == 1
    # Tick 2 is due at 102, two intervals after the start, whatever tick 1 cost.
    assert schedule.wait(101.2) == pytest.approx(0.8)
    assert schedule.tick(102.0) == 2
    # More than an interval late: the schedule starts afresh instead of catching up.
    assert schedule.tick(105.5) == 3
    assert schedule.wait(105.5) == 1.0


def test_ticker_ticks_in_order_and_stops_on_sigterm(venv, tmp_path):
    ticks_file = tmp_path / "ticks.jsonl"
    command = channels(
        venv,
        TICKER / "ticker_project",
        "ticker_project.settings",
        "serve",
        "--ticker-interval",
        "0.05",
        "--ticker-name",
        "test",
    )

    def ticks() -> list[dict]:
        if not ticks_file.exists():
            return []
        return [json.loads(line) for line in ticks_file.read_text().splitlines()]

    with start_process(command, env={"TICKS_FILE": str(ticks_file)}) as server:
        server.wait_for_line(r"ticker listening on ticker 'test' every 0\.05 s")
        wait_until(lambda: len(ticks()) >= 5, "five ticks", timeout=TIMEOUT)
        assert server.terminate(signal.SIGTERM) == 0
    recorded = ticks()
    assert [tick["count"] for tick in recorded] == list(range(1, len(recorded) + 1))
    assert {tick["name"] for tick in recorded} == {"test"}
    times = [tick["at"] for tick in recorded]
    assert times == sorted(times)
    assert "Channels server stopped." in server.output
