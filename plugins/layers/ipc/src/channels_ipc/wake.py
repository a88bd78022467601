"""Doorbells: how a send wakes the processes waiting on its channel, without polling.

Every layer instance that receives owns a FIFO in ``<path>/wake/``, named by a random token,
and registers that token in the store for each key it waits on (a normal channel, or the owner
prefix of its process-specific channels). A sender reads the tokens of the key in the same
transaction that stores the message, and after the commit writes the key, one line, into each
token's FIFO; the receiving process's event loop reads the lines and wakes its waiters.

A FIFO, unlike a Unix datagram socket (whose queue holds 10 datagrams by default), buffers
64 KiB of lines, and writes of up to ``PIPE_BUF`` bytes never interleave. A write that finds
the FIFO full is dropped: the reader then reads a full pipe, knows lines may be missing, and
wakes every waiter. A FIFO with no reader (its process died) refuses writers (``ENXIO`` or
``EPIPE``), so senders notice dead processes and forget their registrations.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import select
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

_PIPE_BUF = select.PIPE_BUF
_DEFAULT_PIPE_SIZE = 65536
# Write ends kept open to other processes' FIFOs; past this many, all are closed and reopened
# as needed, so a machine with many short-lived processes does not exhaust descriptors.
_MAX_OPEN = 256


class Doorbell:
    """This layer instance's FIFO: its token, and the keys rung since the last read."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        self.token = secrets.token_hex(8).encode()
        self.path = directory / self.token.decode()
        # Made under a hidden name and renamed once open for reading, so that a sweep by
        # another process never takes it for the FIFO of a dead one.
        staging = directory / f".{self.token.decode()}"
        os.mkfifo(staging, 0o600)
        try:
            self.fd = os.open(staging, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            # A write end of our own keeps the read end from seeing end-of-file whenever the
            # last sender closes its end.
            self._keep = os.open(staging, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.rename(staging, self.path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        try:
            self._size = fcntl.fcntl(self.fd, fcntl.F_GETPIPE_SZ)
        except OSError:
            self._size = _DEFAULT_PIPE_SIZE

    def read(self) -> Counter[str] | None:
        """How often each key was rung since the last read; None when lines may be lost."""
        chunks = []
        total = 0
        while True:
            try:
                chunk = os.read(self.fd, self._size)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        # A sender that found the pipe full dropped its line: the pipe held more than its
        # size less one write, all of which this drain read.
        if total > self._size - _PIPE_BUF:
            return None
        return Counter(b"".join(chunks).decode().splitlines())

    def close(self) -> None:
        """Close both ends and remove the FIFO."""
        os.close(self.fd)
        os.close(self._keep)
        self.path.unlink(missing_ok=True)


class Ringer:
    """Write ends to other layer instances' FIFOs, opened on first use and kept."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fds: dict[bytes, int] = {}

    def ring(self, token: bytes, keys: Iterable[str]) -> bool:
        """Ring *token*'s doorbell with *keys*; False when its process is gone."""
        fd = self._fds.get(token)
        if fd is None:
            fd = self._open(token)
            if fd is None:
                return False
        lines = "".join(f"{key}\n" for key in keys).encode()
        start = 0
        while start < len(lines):
            # Whole lines, at most PIPE_BUF bytes a write, so writes never interleave.
            end = len(lines)
            if end - start > _PIPE_BUF:
                end = lines.rindex(b"\n", start, start + _PIPE_BUF) + 1
            try:
                os.write(fd, lines[start:end])
            except BlockingIOError:
                return True  # full: the reader will read a full pipe and wake everybody
            except BrokenPipeError:
                self._forget(token)
                return False
            start = end
        return True

    def _open(self, token: bytes) -> int | None:
        path = self.directory / token.decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            # No reader: its process died without closing its layer.
            path.unlink(missing_ok=True)
            return None
        if len(self._fds) >= _MAX_OPEN:
            self.close()
        self._fds[token] = fd
        return fd

    def _forget(self, token: bytes) -> None:
        os.close(self._fds.pop(token))
        (self.directory / token.decode()).unlink(missing_ok=True)

    def close(self) -> None:
        """Close every write end."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def sweep(directory: Path) -> set[bytes]:
    """Remove the FIFOs of dead processes in *directory*; the tokens of the live ones."""
    live = set()
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith("."):
                continue
            try:
                fd = os.open(entry.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as error:
                if error.errno == errno.ENXIO:
                    logger.debug("Removing the doorbell of a dead process: %s", entry.path)
                    Path(entry.path).unlink(missing_ok=True)
                    continue
                raise
            os.close(fd)
            live.add(entry.name.encode())
    return live
