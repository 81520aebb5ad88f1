"""A search result: one chunk, memory or trusted-state entry with its provenance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Hit:
    id: str
    kind: str
    project: str | None
    source: str
    title: str
    text: str
    score: float
    commit: str | None
    lines: tuple[int, int] | None
    path: str
    origin: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "project": self.project, "source": self.source,
                "title": self.title, "text": self.text, "score": round(self.score, 6), "commit": self.commit,
                "lines": list(self.lines) if self.lines else None, "path": self.path, "origin": self.origin}
