"""One run directory, one writer: an exclusive lock that a second tools.train or tools.qat on the
same directory is refused by at once, with the holder named.

The lock is `fcntl.flock` on RUN/.lock, which the kernel releases when the holding process dies
however it dies (SIGKILL included), so a lock file left behind never blocks the next run; the
holder writes its pid, host and command into the file only so that the refusal can name it.
A process may take the same directory's lock again (nested holds are counted).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time

from regnet_keras.errors import InputError

LOCK_FILE = ".lock"

_held = {}  # real path of a lock file -> [open file, hold count]


class RunDirectoryInUseError(InputError, RuntimeError):
    """Another live process holds the run directory."""


def _holder_description(path) -> str:
    try:
        with open(path) as file:
            holder = json.load(file)
        return (f"pid {holder['pid']} on {holder['host']}, started "
                f"{holder.get('started', '?')}: {holder['command']}")
    except (OSError, ValueError, KeyError):
        return "a process whose identity is not written yet"


def check_free(model_dir: str) -> None:
    """Raises RunDirectoryInUseError if a live process holds `model_dir`; writes nothing."""
    path = os.path.join(model_dir, LOCK_FILE)
    if not os.path.isfile(path) or os.path.realpath(path) in _held:
        return
    with open(path) as probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryInUseError(_refusal(model_dir, path)) from None
        fcntl.flock(probe, fcntl.LOCK_UN)


def _refusal(model_dir, path):
    return (f"model_dir={model_dir!r} is in use by {_holder_description(path)}. Wait for it to "
            "finish or stop it (a killed process leaves no lock), or pass another --model_dir.")


def acquire(model_dir: str) -> None:
    """Takes the lock of `model_dir` (created if needed) for this process, or raises
    RunDirectoryInUseError naming the live holder."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, LOCK_FILE)
    key = os.path.realpath(path)
    if key in _held:
        _held[key][1] += 1
        return
    file = open(path, "a+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise RunDirectoryInUseError(_refusal(model_dir, path)) from None
    file.seek(0)
    file.truncate()
    json.dump({"pid": os.getpid(), "host": socket.gethostname(),
               "command": " ".join(sys.argv),
               "started": time.strftime("%Y-%m-%d %H:%M:%S")}, file)
    file.flush()
    _held[key] = [file, 1]


def release(model_dir: str) -> None:
    """Gives back one hold of `model_dir`'s lock; the last one unlocks it."""
    key = os.path.realpath(os.path.join(model_dir, LOCK_FILE))
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        fcntl.flock(entry[0], fcntl.LOCK_UN)
        entry[0].close()


class hold:  # noqa: N801 - used as `with run_lock.hold(model_dir):`
    """Context manager form of acquire/release."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir

    def __enter__(self):
        acquire(self.model_dir)
        return self

    def __exit__(self, *exc):
        release(self.model_dir)
        return False
