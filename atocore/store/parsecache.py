"""A small derived cache of per-file parse results, keyed by blob sha (so it is never stale).

``atocore status`` validates every memory, state and project file at main; a year in, that is
thousands of files parsed per call although only a few change between calls. The cache keeps
``{blob sha: result}`` as JSON in the index folder (never in git; delete it at will), and is
rewritten only when something new was parsed, keeping just the entries the call used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


class ParseCache:
    def __init__(self, folder: Path, name: str):
        self.path = folder / name
        self._old: dict[str, Any] = {}
        self._used: dict[str, Any] = {}
        self._new = 0
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                self._old = data
        except (OSError, ValueError):
            pass  # missing or damaged: start empty

    def get(self, sha: str, compute: Callable[[], Any]) -> Any:
        if sha in self._used:
            return self._used[sha]
        if sha in self._old:
            value = self._old[sha]
        else:
            value = compute()
            self._new += 1
        self._used[sha] = value
        return value

    def save(self) -> None:
        if not self._new and len(self._used) == len(self._old):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._used, separators=(",", ":")))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only store still answers, just without the cache
