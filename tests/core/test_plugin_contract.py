"""Plugins use the host contract and nothing else of the kernel, and import only downward.

Read with :mod:`ast` from every module of every plugin and example plugin (``plugins/*/src``,
``plugins/layers/*/src``, ``examples/*/src``):

- no plugin reaches a private kernel name (``from channels_core.x import _name``,
  ``channels_core.x._name``, ``channels_core._module``), nor a private attribute of the
  server or host (``server._x``, ``self.host._x``, ``self.hub.server._x``), nor the host's
  internals: its ``_layer`` and ``_dispatcher``, or a ``dispatcher``, ``asgi_app`` or
  ``layer`` attribute of the server or host;
- no module of a distribution imports a ``channels_*`` package of a distribution it does not
  depend on, directly or through its dependencies, as read from the ``pyproject.toml`` files
  (imports inside functions and under ``TYPE_CHECKING`` count).

Each failure names the file, the line and the rule. The checkers are tested first on small
sources that break each rule, so these tests cannot pass by checking nothing.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION_GLOBS = (
    "core/pyproject.toml",
    "plugins/*/pyproject.toml",
    "plugins/layers/*/pyproject.toml",
    "examples/*/pyproject.toml",
)
KERNEL = "channels_core"
# What a plugin may call the server or host it is given, or hold it as.
HOST_NAMES = frozenset({"server", "host"})
# Attributes of the host that are the kernel's, public names or not.
HOST_INTERNALS = frozenset({"_layer", "_dispatcher", "dispatcher", "asgi_app", "layer"})

PRIVATE_KERNEL_NAME = "no private kernel names"
PRIVATE_HOST_ATTRIBUTE = "no private attributes of the server or host"
HOST_INTERNAL = "no host internals (its layer, dispatcher or ASGI app)"
UPWARD_IMPORT = "imports go downward only"


@dataclass(frozen=True)
class Violation:
    """One broken rule: where, which rule, and what was found."""

    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.detail}"


@dataclass(frozen=True)
class Distribution:
    """A distribution of the repository: its import package and what it depends on."""

    name: str
    package: str
    requires: frozenset[str]
    source: Path


def _private(name: str) -> bool:
    """A single-underscore name: private by convention (dunders are not)."""
    return name.startswith("_") and not name.startswith("__")


def _holds_host(node: ast.expr) -> bool:
    """Whether *node* names the server or host: ``server``, ``host``, ``self.server``,
    ``self.hub.server``…"""
    if isinstance(node, ast.Name):
        return node.id in HOST_NAMES
    return isinstance(node, ast.Attribute) and node.attr in HOST_NAMES


def _kernel_path(node: ast.expr) -> list[str] | None:
    """``["channels_core", "x", "_y"]`` for ``channels_core.x._y``; None if not the kernel's."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == KERNEL:
        return [KERNEL, *reversed(parts)]
    return None


def _host_attribute(owner: ast.expr, name: str) -> tuple[str, str] | None:
    """The rule and detail broken by reading attribute *name* of *owner*, if any."""
    if not _holds_host(owner):
        return None
    shown = f"{ast.unparse(owner)}.{name}"
    if name in HOST_INTERNALS:
        return HOST_INTERNAL, f"reads {shown}; use the host's calls (emit, request, send…)"
    if _private(name):
        return PRIVATE_HOST_ATTRIBUTE, f"reads {shown}, a private attribute"
    return None


def check_private_access(source: str, path: str) -> list[Violation]:
    """The private kernel names and host internals *source* reaches."""
    found = []

    def add(node: ast.AST, rule: str, detail: str) -> None:
        found.append(Violation(path, node.lineno, rule, detail))

    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            modules = node.module.split(".")
            if modules[0] == KERNEL:
                if any(map(_private, modules)):
                    add(node, PRIVATE_KERNEL_NAME, f"imports from {node.module}")
                for alias in node.names:
                    if _private(alias.name):
                        add(node, PRIVATE_KERNEL_NAME, f"imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                modules = alias.name.split(".")
                if modules[0] == KERNEL and any(map(_private, modules)):
                    add(node, PRIVATE_KERNEL_NAME, f"imports {alias.name}")
        elif isinstance(node, ast.Attribute):
            dotted = _kernel_path(node)
            # Only the outermost attribute of a chain is reported, once.
            if dotted is not None and _private(node.attr):
                add(node, PRIVATE_KERNEL_NAME, f"reads {'.'.join(dotted)}")
            broken = _host_attribute(node.value, node.attr)
            if broken is not None:
                add(node, *broken)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            broken = _host_attribute(node.args[0], node.args[1].value)
            if broken is not None:
                add(node, *broken)
    return found


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every absolute import of *tree*, wherever it is (functions, ``TYPE_CHECKING``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            yield node.lineno, node.module


def check_imports(
    source: str,
    path: str,
    distribution: str,
    distributions: Mapping[str, Distribution],
) -> list[Violation]:
    """The imports in *source* (a module of *distribution*) of a ``channels_*`` package that
    *distribution* does not depend on, directly or transitively."""
    allowed = dependency_closure(distribution, distributions)
    by_package = {dist.package: dist for dist in distributions.values()}
    found = []
    for line, module in imported_modules(ast.parse(source, path)):
        imported = by_package.get(module.split(".")[0])
        if imported is not None and imported.name not in allowed:
            found.append(
                Violation(
                    path,
                    line,
                    UPWARD_IMPORT,
                    f"{distribution} imports {module}, of {imported.name}, which it does not "
                    f"depend on (it depends on {sorted(allowed - {distribution}) or 'nothing'})",
                )
            )
    return found


def dependency_closure(name: str, distributions: Mapping[str, Distribution]) -> set[str]:
    """*name* and every distribution of the repository it depends on, directly or not."""
    seen = {name}
    todo = [name]
    while todo:
        for required in distributions[todo.pop()].requires:
            if required in distributions and required not in seen:
                seen.add(required)
                todo.append(required)
    return seen


def read_distribution(pyproject: Path) -> Distribution:
    """The distribution a ``pyproject.toml`` describes (hatchling's wheel ``packages``)."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    requirements: list[str] = list(project.get("dependencies", ()))
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    packages = data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert len(packages) == 1, f"{pyproject}: expected one package, found {packages}"
    return Distribution(
        name=canonicalize_name(project["name"]),
        package=Path(packages[0]).name,
        requires=frozenset(canonicalize_name(Requirement(r).name) for r in requirements),
        source=pyproject.parent / packages[0],
    )


def repository_distributions() -> dict[str, Distribution]:
    """Every distribution of the repository, by canonical name."""
    pyprojects = sorted(path for glob in DISTRIBUTION_GLOBS for path in ROOT.glob(glob))
    return {dist.name: dist for dist in map(read_distribution, pyprojects)}


DISTRIBUTIONS = repository_distributions()
PLUGINS = sorted(name for name, dist in DISTRIBUTIONS.items() if dist.package != KERNEL)


def plugin_modules(names: Iterable[str]) -> Iterator[tuple[str, Path]]:
    """Each distribution of *names* with each of its modules."""
    for name in names:
        for path in sorted(DISTRIBUTIONS[name].source.rglob("*.py")):
            yield name, path


def _report(violations: list[Violation]) -> str:
    return "\n".join(map(str, violations))


# The checkers catch what they are for ------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("from channels_core.host import _Held\n", PRIVATE_KERNEL_NAME),
        ("from channels_core._compat import thing\n", PRIVATE_KERNEL_NAME),
        ("import channels_core._compat\n", PRIVATE_KERNEL_NAME),
        ("import channels_core.local\nchannels_core.local._bound.clear()\n", PRIVATE_KERNEL_NAME),
        ("def f(server):\n    return server._receivers\n", PRIVATE_HOST_ATTRIBUTE),
        ("def f(self):\n    self.host._tasks.clear()\n", PRIVATE_HOST_ATTRIBUTE),
        ("def f(self):\n    return self.hub.server._upgrades\n", PRIVATE_HOST_ATTRIBUTE),
        ("def f(server):\n    return getattr(server, '_tasks')\n", PRIVATE_HOST_ATTRIBUTE),
        ("async def f(server):\n    await server._layer.send('a', {})\n", HOST_INTERNAL),
        ("def f(self):\n    return self.server._dispatcher\n", HOST_INTERNAL),
        ("def f(host):\n    return host.dispatcher\n", HOST_INTERNAL),
        ("def f(self):\n    return self.server.asgi_app\n", HOST_INTERNAL),
        ("async def f(host):\n    await host.layer.send('a', {})\n", HOST_INTERNAL),
    ],
)
def test_the_private_access_checker_catches(source, rule):
    violations = check_private_access(source, "plugin.py")
    assert [violation.rule for violation in violations] == [rule], _report(violations)
    assert str(violations[0]).startswith(f"plugin.py:{violations[0].line}: [{rule}] ")


def test_the_private_access_checker_lets_the_contract_through():
    source = (
        "from channels_core import __version__, hookimpl\n"
        "from channels_core.exceptions import EventRefused\n"
        "class P:\n"
        "    def __init__(self, server):\n"
        "        self.server = server\n"
        "        self._queue = []\n"
        "        self.reply_channel = server.open_reply('x.send', self._reply)\n"
        "    async def go(self):\n"
        "        with self.server.hold():\n"
        "            await self.server.emit('x.receive', {}, reraise=True)\n"
        "        return self.server.option('x', 'endpoint'), self._queue, self.layer\n"
    )
    assert check_private_access(source, "plugin.py") == []


def _toy_distributions() -> dict[str, Distribution]:
    def dist(name: str, *requires: str) -> Distribution:
        return Distribution(name, name.replace("-", "_"), frozenset(requires), Path(name))

    return {
        "channels-core": dist("channels-core"),
        "channels-http": dist("channels-http", "channels-core"),
        "channels-ws": dist("channels-ws", "channels-core", "channels-http"),
        "channels-chat": dist("channels-chat", "channels-ws"),
    }


@pytest.mark.parametrize(
    "source",
    [
        "import channels_ws\n",
        "from channels_ws.protocol import WebSocketProtocol\n",
        "def upgrade():\n    from channels_ws import hub\n    return hub\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import channels_chat.x\n",
    ],
)
def test_the_import_checker_catches_an_import_of_a_dependent(source):
    violations = check_imports(source, "http.py", "channels-http", _toy_distributions())
    assert [violation.rule for violation in violations] == [UPWARD_IMPORT], _report(violations)
    assert "channels-http imports channels_" in violations[0].detail


def test_the_import_checker_allows_direct_and_transitive_dependencies():
    source = (
        "import channels_core\nfrom channels_http import protocol\n"
        "def f():\n    from . import sibling\n    import channels_ws.frames\n"
        "import json\nimport channels_unknown\n"
    )
    assert check_imports(source, "chat.py", "channels-chat", _toy_distributions()) == []


def test_the_repository_has_the_distributions_to_check():
    assert DISTRIBUTIONS["channels-ws"].requires >= {"channels-core", "channels-http"}
    assert DISTRIBUTIONS["channels-ws"].package == "channels_ws"
    assert {"channels-http", "channels-memory", "channels-lineecho", "channels-ask"} <= set(PLUGINS)
    assert all(DISTRIBUTIONS[name].source.is_dir() for name in PLUGINS)
    assert len(list(plugin_modules(PLUGINS))) > 30


# The plugins keep the rules ----------------------------------------------------------------


@pytest.mark.parametrize("distribution", PLUGINS)
def test_plugins_use_only_the_public_contract(distribution):
    violations = [
        violation
        for name, path in plugin_modules([distribution])
        for violation in check_private_access(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not violations, "\n" + _report(violations)


@pytest.mark.parametrize("distribution", PLUGINS)
def test_plugins_import_only_what_they_depend_on(distribution):
    violations = [
        violation
        for name, path in plugin_modules([distribution])
        for violation in check_imports(
            path.read_text(), str(path.relative_to(ROOT)), name, DISTRIBUTIONS
        )
    ]
    assert not violations, "\n" + _report(violations)
