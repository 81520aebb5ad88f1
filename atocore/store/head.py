"""Main's head: the sha every reader (retrieval, inference, context) builds on.

``read_main_head`` reads the ref (one small file read). A long-running process that already
watches main (the service's watcher, atocore/server/service.py) registers what it last read with
``watch_main_head``; ``main_head`` then answers from it, so the hot path does no file system call.
This is the one way main's head reaches the layers above the store.
"""

from __future__ import annotations

from typing import Callable

from .repo import Store

_watched: dict[str, Callable[[], str | None]] = {}


def watch_main_head(store: Store, provider: Callable[[], str | None] | None) -> None:
    """Answer ``main_head(store)`` from ``provider`` (the watcher's last read); ``None`` stops it."""
    if provider is None:
        _watched.pop(str(store.path), None)
    else:
        _watched[str(store.path)] = provider


def read_main_head(store: Store) -> str | None:
    """Main's sha with one small file read; dulwich for packed refs or no main."""
    try:
        with open(f"{store.path}/refs/heads/main", "rb") as f:
            sha = f.read(41).strip()
        if len(sha) == 40:
            return sha.decode()
    except OSError:
        pass
    return store.head()  # packed refs, or no main yet


def main_head(store: Store) -> str | None:
    """Main's sha: the watched value when a watcher is registered, else read now."""
    watched = _watched.get(str(store.path))
    return watched() if watched is not None else read_main_head(store)
