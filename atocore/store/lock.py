"""The store's writer lock: one writer at a time across threads and processes.

``flock`` on a lock file beside the objects. The kernel drops the lock when a process dies
(even by SIGKILL), so a crashed writer never wedges the store.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import Busy

_thread_locks: dict[str, threading.RLock] = {}
_guard = threading.Lock()
_held = threading.local()
_RETRY = "try again shortly (if it persists, look for a stuck atocore process holding it)"


def _thread_lock(path: Path) -> threading.RLock:
    with _guard:
        return _thread_locks.setdefault(str(path), threading.RLock())


@contextmanager
def file_lock(path: Path, timeout: float | None = 60.0, what: str = "the store") -> Iterator[None]:
    """Hold an exclusive lock on ``path``; re-entrant within one thread."""
    key = str(path)
    depth = getattr(_held, key, 0)
    if depth:  # re-entry from the same thread: already exclusive
        setattr(_held, key, depth + 1)
        try:
            yield
        finally:
            setattr(_held, key, depth)
        return
    tlock = _thread_lock(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    if not tlock.acquire(timeout=-1 if timeout is None else timeout):
        raise Busy(f"{what} is busy: another writer held the lock for more than {timeout:g} s; {_RETRY}")
    try:
        fd = _open_lock_file(path)
        if fd is None:  # a read-only file system without the lock file: nobody can write here anyway
            setattr(_held, key, 1)
            try:
                yield
            finally:
                setattr(_held, key, 0)
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise Busy(f"{what} is busy: another process held the lock for more than {timeout:g} s; "
                                   f"{_RETRY}") from None
                    time.sleep(0.001)
            setattr(_held, key, 1)
            try:
                yield
            finally:
                setattr(_held, key, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        tlock.release()


def _open_lock_file(path: Path) -> int | None:
    """The lock file's descriptor; on a read-only file system (a store mounted read-only, where
    reads must still work) the existing file opened read-only (flock works on it), or None."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def try_lock(path: Path) -> int | None:
    """Take the lock without waiting; return the fd holding it, or None if someone has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None
