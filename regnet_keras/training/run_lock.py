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
import stat
import sys
import time

from regnet_keras.errors import InputError

LOCK_FILE = ".lock"

_held = {}  # real path of a lock file -> [open file, hold count]


class RunDirectoryInUseError(InputError, RuntimeError):
    """Another live process holds the run directory."""


# The holder's record is one short JSON line; what lies beyond is not read.
MAX_HOLDER_BYTES = 4096


def _holder_description(path) -> str:
    try:
        with _open_lock_file(path, os.O_RDONLY) as file:
            holder = json.loads(file.read(MAX_HOLDER_BYTES).decode("utf-8"))
        description = (f"pid {holder['pid']} on {holder['host']}, started "
                       f"{holder.get('started', '?')}: {holder['command']}")
        return description if len(description) <= 300 else description[:297] + "..."
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError,
            RunDirectoryInUseError):
        return "a process whose identity is not written yet"


def _open_lock_file(path, flags):
    """The lock file, opened without following a symbolic link and refused unless it is a
    regular file: a run directory from elsewhere could make `.lock` a link to a file that
    truncating would destroy, or a FIFO that blocks on open."""
    try:
        descriptor = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise RunDirectoryInUseError(
            f"{path} cannot be opened as a lock file ({error.strerror}); it must be a regular "
            "file, not a link or a directory. Remove it, or pass another --model_dir.") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise RunDirectoryInUseError(f"{path} is not a regular file; remove it, or pass another "
                                     "--model_dir.")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb" if flags == os.O_RDONLY else "r+b")


def check_free(model_dir: str) -> None:
    """Raises RunDirectoryInUseError if a live process holds `model_dir`; writes nothing."""
    path = os.path.join(model_dir, LOCK_FILE)
    if not os.path.lexists(path) or os.path.realpath(path) in _held:
        return
    with _open_lock_file(path, os.O_RDONLY) as probe:
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
    file = _open_lock_file(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise RunDirectoryInUseError(_refusal(model_dir, path)) from None
    file.seek(0)
    file.truncate()
    file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "command": " ".join(sys.argv),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode("utf-8"))
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
