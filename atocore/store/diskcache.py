"""Small JSON caches in the store's index folder, one file per key.

Derived and disposable like the indexes beside them: a missing or damaged file is a miss, a
read-only store simply runs without the cache, and old keys are dropped past a bound (they
belong to branches that are gone). Keys are hex digests made by the caller from everything the
cached value depends on.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class DiskCache:
    def __init__(self, folder: Path, max_files: int = 2048):
        self.folder = folder
        self.max_files = max_files

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or None when it is missing or not valid JSON."""
        try:
            return json.loads((self.folder / f"{key}.json").read_bytes())
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        """Write atomically (a reader sees the old file or the new one), then bound the folder."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_text(json.dumps(value, separators=(",", ":")))
            os.replace(tmp, self.folder / f"{key}.json")
            names = os.listdir(self.folder)
            if len(names) > self.max_files:  # keep the newest half
                paths = sorted((self.folder / n for n in names), key=lambda p: p.stat().st_mtime)
                for old in paths[: len(paths) - self.max_files // 2]:
                    old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only store still answers, just without the cache
