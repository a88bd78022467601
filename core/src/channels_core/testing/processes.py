"""Helpers for tests that run real processes: servers, workers, throwaway virtualenvs.

::

    port = free_port()
    with start_process([channels, "serve", "--udp-port", str(port)]) as server:
        server.wait_for_line(r"ready", timeout=30)
        ...
    assert server.returncode == 0

Every wait has a timeout; a process still running when its ``with`` block ends is killed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import venv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 30.0
LOOPBACK = "127.0.0.1"


def require_program(name: str, package: str | None = None) -> str:
    """The path of the system program *name*, found on ``PATH``; when it is missing, the
    running test is skipped, the reason saying what to install (Debian's *package*, by
    default *name*)."""
    path = shutil.which(name)
    if path is None:
        import pytest

        pytest.skip(
            f"{name} is not installed or not on PATH (Debian: apt-get install -y "
            f"{package or name}; bash .ci/run installs what the tests need)"
        )
    return path


def free_port(kind: int = socket.SOCK_STREAM, host: str = LOOPBACK) -> int:
    """A port on *host* that was free a moment ago (TCP by default, ``SOCK_DGRAM`` for UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(predicate, what: str, timeout: float = DEFAULT_TIMEOUT):
    """Poll *predicate* until it returns something true and return that; AssertionError
    naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what}.")


def wait_for_port(port: int, host: str = LOOPBACK, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until a TCP connection to *host*:*port* succeeds; TimeoutError after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Nothing accepted connections on {host}:{port} within {timeout} s."
                ) from error
            time.sleep(0.05)


class RunningProcess:
    """A child process whose output (stdout and stderr, merged) is collected line by line."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        with self._changed:
            return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.popen.poll()

    def wait_for_line(
        self, pattern: str | re.Pattern, timeout: float = DEFAULT_TIMEOUT
    ) -> re.Match:
        """The match of the first output line matching *pattern* (searched, not anchored).

        Raises TimeoutError after *timeout* seconds, and RuntimeError when the process exits
        first; both carry the output so far.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._changed:
            while True:
                for line in self.lines[checked:]:
                    match = regex.search(line)
                    if match:
                        return match
                checked = len(self.lines)
                if not self._reader.is_alive():
                    raise RuntimeError(
                        f"The process exited with status {self.popen.wait()} before printing a "
                        f"line matching {regex.pattern!r}. Output:\n{self.output}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"No line matching {regex.pattern!r} within {timeout} s. "
                        f"Output:\n{self.output}"
                    )
                self._changed.wait(remaining)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Send *sig* and wait for the exit status; kill and raise TimeoutError after *timeout*."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            status = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise TimeoutError(
                f"The process did not exit within {timeout} s of signal {sig}; killed it. "
                f"Output:\n{self.output}"
            ) from None
        self._reader.join(5)
        return status

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait for the process to exit by itself and return its status."""
        status = self.popen.wait(timeout)
        self._reader.join(5)
        return status

    def __enter__(self) -> RunningProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)
        self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def channels_command(*args: str | os.PathLike) -> list[str]:
    """The command line of ``channels ARGS`` run by this interpreter, as ``channels serve
    --processes`` starts its children: no ``channels`` script on ``PATH`` needed."""
    from channels_core.supervisor import CHILD_COMMAND

    return [sys.executable, "-c", CHILD_COMMAND, *map(str, args)]


def start_process(
    args: Sequence[str | os.PathLike],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    pass_fds: Sequence[int] = (),
) -> RunningProcess:
    """Start *args* with output collected; *env* is added to this process's environment, and
    the file descriptors *pass_fds* are inherited (a listening socket for ``--fd``)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **(env or {})}
    popen = subprocess.Popen(
        [str(arg) for arg in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=cwd,
        pass_fds=tuple(pass_fds),
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    return RunningProcess(popen)


def run(
    args: Sequence[str | os.PathLike],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Run *args* to completion (stdout and stderr captured apart); *env* adds variables."""
    return subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


class Venv:
    """A throwaway virtualenv built by :func:`build_venv`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bin = path / "bin"
        self.python = self.bin / "python"

    def script(self, name: str) -> Path:
        """The path of the console script *name* in the venv."""
        return self.bin / name

    def install(self, *sources: str | os.PathLike, timeout: float = 120) -> None:
        """``pip install --no-deps --no-build-isolation --no-index`` local *sources* into it.

        Builds with the build backends already installed (hatchling), offline.
        """
        result = run(
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--disable-pip-version-check",
                *sources,
            ],
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(
                f"pip install {' '.join(map(str, sources))} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


def build_venv(
    path: str | os.PathLike,
    install: Iterable[str | os.PathLike] = (),
    scripts: Mapping[str, str] | None = None,
) -> Venv:
    """A virtualenv at *path* that sees everything installed in the running environment.

    ``venv --system-site-packages`` alone would see the base interpreter's packages, not
    those of the virtualenv running the tests, so a ``.pth`` file adds the running
    environment's site-packages (with its editable installs) after the new venv's own. The new
    venv has no pip of its own: the running environment's pip installs into it.

    :param install: local distributions (directories) to install with :meth:`Venv.install`.
    :param scripts: console scripts to create, ``{"channels": "channels_core.cli:main"}``:
        the scripts of distributions that live in the running environment are not copied.
    """
    path = Path(path)
    venv.EnvBuilder(system_site_packages=True, with_pip=False, symlinks=True).create(path)
    created = Venv(path)
    site_packages = Path(
        run(
            [created.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    parent = sysconfig.get_path("purelib")
    (site_packages / "_channels_parent_env.pth").write_text(
        f"import site; site.addsitedir({parent!r})\n"
    )
    for name, target in (scripts or {}).items():
        module, _, function = target.partition(":")
        script = created.script(name)
        script.write_text(
            f"#!{created.python}\nimport sys\nfrom {module} import {function}\n"
            f"sys.exit({function}())\n"
        )
        script.chmod(0o755)
    sources = list(install)
    if sources:
        created.install(*sources)
    return created


def write_settings(directory: str | os.PathLike, module: str, **values: object) -> Path:
    """Write the Django settings module *module* (a top-level name) into *directory*.

    *values* become module-level settings, written with ``repr``; ``SECRET_KEY`` and
    ``INSTALLED_APPS = ["channels_core"]`` are set unless given. Pass *directory* to
    ``channels --pythonpath`` and *module* to ``--settings``.
    """
    values = {"SECRET_KEY": "channels-test", "INSTALLED_APPS": ["channels_core"], **values}
    path = Path(directory) / f"{module}.py"
    path.write_text("".join(f"{name} = {value!r}\n" for name, value in values.items()))
    return path


def rss(pid: int) -> int:
    """The resident memory of process *pid*, in bytes (Linux: ``/proc/PID/status``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


class PeakMemory:
    """The highest RSS of process *pid*, sampled every 20 ms from a thread while in the
    block: ``with PeakMemory(pid) as memory: ...``, then ``memory.growth`` in bytes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = rss(pid)
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss(self.pid))
            except (FileNotFoundError, ProcessLookupError):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        """How much the RSS rose above its value when the block began, at its highest."""
        return self.peak - self.start


__all__ = [
    "DEFAULT_TIMEOUT",
    "LOOPBACK",
    "PeakMemory",
    "RunningProcess",
    "Venv",
    "build_venv",
    "channels_command",
    "free_port",
    "require_program",
    "rss",
    "run",
    "start_process",
    "wait_for_port",
    "write_settings",
]
