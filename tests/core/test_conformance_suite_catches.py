"""The layer conformance suite fails layers that break the contract.

Each broken layer is a real subclass of the memory layer with one fault. They run the suite
in a pytest subprocess (pytest-asyncio in strict mode, as a layer distribution may have it),
beside the unbroken layer as a control, and each must fail the tests aimed at its fault.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

BROKEN_LAYERS = textwrap.dedent(
    '''
    import asyncio

    import pytest

    from channels_core.testing.conformance import LayerConformance
    from channels_memory import InMemoryChannelLayer


    class Duplicating(InMemoryChannelLayer):
        async def send(self, channel, message):
            await super().send(channel, message)
            await super().send(channel, message)


    class Reordering(InMemoryChannelLayer):
        """Holds every other message back and sends it after the next one."""

        held = None

        async def send(self, channel, message):
            if self.held is None:
                self.held = (channel, message)
                return
            await super().send(channel, message)
            await super().send(*self.held)
            self.held = None


    class Lossy(InMemoryChannelLayer):
        sent = 0

        async def send(self, channel, message):
            self.sent += 1
            if self.sent % 97:
                await super().send(channel, message)


    class CancelUnsafe(InMemoryChannelLayer):
        """Loses a message when cancelled between taking it and returning it."""

        async def receive(self, channel):
            message = await super().receive(channel)
            await asyncio.sleep(0)
            return message


    class NeverExpiring(InMemoryChannelLayer):
        def __init__(self, **config):
            config["expiry"] = 3600
            super().__init__(**config)


    class RaisingOnFullMember(InMemoryChannelLayer):
        async def group_send(self, group, message):
            for channel in await self.group_members(group):
                await self.send(channel, message)


    class Suite(LayerConformance):
        receive_timeout = 1.0
        layer_class = InMemoryChannelLayer

        @pytest.fixture
        def make_layer(self):
            return self.layer_class


    class TestControl(Suite):
        pass


    class TestDuplicating(Suite):
        layer_class = Duplicating


    class TestReordering(Suite):
        layer_class = Reordering


    class TestLossy(Suite):
        layer_class = Lossy


    class TestCancelUnsafe(Suite):
        layer_class = CancelUnsafe


    class TestNeverExpiring(Suite):
        layer_class = NeverExpiring


    class TestRaisingOnFullMember(Suite):
        layer_class = RaisingOnFullMember
    '''
)

SELECTED = [
    "test_one_channel_delivers_in_send_order",
    "test_many_receivers_get_every_message_exactly_once_in_order",
    "test_receive_cancelled_as_its_message_arrives_loses_nothing",
    "test_message_older_than_expiry_is_never_delivered",
    "test_group_send_skips_a_full_member_and_counts_it",
]

# Which selected tests each broken layer must fail (a parametrized test fails when any of its
# cases does).
MUST_FAIL = {
    "TestDuplicating": {
        "test_one_channel_delivers_in_send_order",
        "test_many_receivers_get_every_message_exactly_once_in_order",
    },
    "TestReordering": {"test_one_channel_delivers_in_send_order"},
    "TestLossy": {"test_many_receivers_get_every_message_exactly_once_in_order"},
    "TestCancelUnsafe": {"test_receive_cancelled_as_its_message_arrives_loses_nothing"},
    "TestNeverExpiring": {"test_message_older_than_expiry_is_never_delivered"},
    "TestRaisingOnFullMember": {"test_group_send_skips_a_full_member_and_counts_it"},
}


def run_suite(tmp_path) -> dict[str, dict[str, bool]]:
    """Run the broken layers' suites; ``{class: {test: passed}}``."""
    (tmp_path / "test_broken_layers.py").write_text(BROKEN_LAYERS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    report = tmp_path / "report.xml"
    node_ids = [f"test_broken_layers.py::TestControl::{test}" for test in SELECTED]
    node_ids += [
        f"test_broken_layers.py::{test_class}::{test}"
        for test_class, tests in MUST_FAIL.items()
        for test in sorted(tests)
    ]
    # --tb=no: only outcomes are needed, and skipping traceback formatting also avoids a
    # CPython 3.11 ast.parse bug that some deep async tracebacks trigger inside pytest.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--tb=no",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *node_ids,
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=False,
    )
    outcomes: dict[str, dict[str, bool]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        test_class = case.get("classname").rpartition(".")[2]
        test = case.get("name").partition("[")[0]
        failed = case.find("failure") is not None or case.find("error") is not None
        tests = outcomes.setdefault(test_class, {})
        tests[test] = tests.get(test, True) and not failed
    return outcomes


def test_the_suite_fails_each_broken_layer_on_its_fault_and_passes_the_real_one(tmp_path):
    outcomes = run_suite(tmp_path)
    assert set(outcomes["TestControl"]) == set(SELECTED)
    assert all(outcomes["TestControl"].values()), outcomes["TestControl"]
    for test_class, must_fail in MUST_FAIL.items():
        failed = {test for test, passed in outcomes[test_class].items() if not passed}
        assert must_fail <= failed, f"{test_class} was not caught by {must_fail - failed}"
