"""Is the AtoCore service running on this store?

The service (``atocore serve``) holds ``<store>/atocore-service.lock`` for its whole life
with ``flock``; the file's content says who holds it. The kernel drops the lock when the
process dies (even by SIGKILL), so a crashed server never blocks a later restore.

Used by restore: a restore from the command line is refused while another process serves the
store (the service writes at any moment: captures, reviews); the service itself restores
through ``POST /admin/restore``, which runs in the process that holds this lock.

    lock = hold_service_lock(store)     # at server start-up; raises Busy if another server runs
    ...
    lock.release()                      # at shutdown (or let the process exit)
    service_running(store) -> dict | None   # {"pid", "started", "host", "self"}
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..errors import Busy

SERVICE_LOCK_FILE = "atocore-service.lock"

_held: dict[str, "ServiceLock"] = {}
_guard = threading.Lock()


def _lock_path(store) -> Path:
    return Path(getattr(store, "path", store)) / SERVICE_LOCK_FILE


def _read_info(path: Path) -> dict:
    try:
        data = json.loads(path.read_text() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class ServiceLock:
    """The service's claim on a store; release it (or exit) to give it up."""

    def __init__(self, path: Path, fd: int, info: dict):
        self.path = path
        self.fd: int | None = fd
        self.info = info

    def release(self) -> None:
        with _guard:
            if self.fd is None:
                return
            _held.pop(str(self.path), None)
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "ServiceLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def hold_service_lock(store) -> ServiceLock:
    """Claim the store for this process's service; ``Busy`` if another service holds it."""
    path = _lock_path(store)
    with _guard:
        mine = _held.get(str(path))
        if mine is not None and mine.fd is not None:
            return mine
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = _read_info(path)
            raise Busy(f"another AtoCore service (pid {other.get('pid', '?')}) is already serving "
                       f"{path.parent}; stop it first") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        lock = ServiceLock(path, fd, info)
        _held[str(path)] = lock
        return lock


def service_running(store) -> dict | None:
    """Who serves the store: ``{"pid", "host", "started", "self"}``, or ``None`` if nobody."""
    path = _lock_path(store)
    mine = _held.get(str(path))
    if mine is not None and mine.fd is not None:
        return {**mine.info, "self": True}
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return {**_read_info(path), "self": False}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
