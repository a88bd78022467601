"""Which processes are alive: how the IPC layer ends the presence of a killed process.

All the processes of a store run on one machine, so the layer needs no heartbeat: a present
member is stored with the *identity* of the process that added it (its pid, its start time,
and its pid namespace), and a reader asks the kernel whether that process still runs. A
process killed with SIGKILL loses its members at once, not after a timeout. The start time
(``/proc/<pid>/stat``, in clock ticks after boot) tells a reused pid from the process that
had it; a zombie (killed, not yet reaped by its parent) counts as dead.

A process in another pid namespace (another container sharing the directory) cannot be
looked up by its pid: its members are kept until they are discarded or their membership
expires, rather than ended by a wrong guess.
"""

from __future__ import annotations

import os
import struct

# pid, start time (clock ticks after boot), pid namespace (the inode of /proc/self/ns/pid).
IDENTITY = struct.Struct("<IQQ")

_own: tuple[int, bytes] | None = None


def _stat(pid: int | str) -> tuple[bytes, int] | None:
    """The state letter and the start time of process *pid*, or None when there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, in parentheses, may hold spaces and parentheses: fields follow the
    # last ')'. There, field 3 (the state) comes first and field 22 (the start time) 20th.
    fields = stat.rpartition(b")")[2].split()
    return fields[0], int(fields[19])


def _namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def this_process() -> bytes:
    """The packed identity of the calling process (computed again after a fork)."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, IDENTITY.pack(pid, _stat("self")[1], _namespace()))
    return _own[1]


def is_alive(identity: bytes) -> bool:
    """Whether the process of the packed *identity* still runs (True when it cannot be
    told: a process of another pid namespace)."""
    pid, started, namespace = IDENTITY.unpack(identity)
    if namespace != IDENTITY.unpack(this_process())[2]:
        return True
    stat = _stat(pid)
    return stat is not None and stat[0] not in (b"Z", b"X") and stat[1] == started
