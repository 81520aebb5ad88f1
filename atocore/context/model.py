"""The shape of a context build: what the assistant gets and where each piece came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("state", "memory", "chunk")


@dataclass
class ContextItem:
    """One piece of the supplement with its provenance."""

    section: str                 # "state" | "memory" | "chunk"
    id: str
    text: str
    source: str                  # binding `source` (state/<p>.yaml#key, memories/<id>.md, relative doc path)
    path: str                    # path in the store at `commit`
    commit: str | None
    project: str | None = None
    title: str = ""
    lines: tuple[int, int] | None = None
    score: float | None = None
    origin: str = ""             # source | memory | state | interaction
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. state category/key, memory type
    truncated: bool = False

    @property
    def kind(self) -> str:
        return self.section

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies recursively and costs more than the build itself.
        return {"section": self.section, "id": self.id, "text": self.text, "source": self.source, "path": self.path,
                "commit": self.commit, "project": self.project, "title": self.title,
                "lines": list(self.lines) if self.lines else None, "score": self.score, "origin": self.origin,
                "meta": dict(self.meta), "truncated": self.truncated, "kind": self.section}


@dataclass
class ContextBuild:
    prompt: str
    project: str | None
    items: list[ContextItem] = field(default_factory=list)
    budget_chars: int = 0
    format: str = "markdown"
    context: str = ""
    project_source: str = "none"   # "given" | "inferred" | "none"
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    commit: str | None = None      # main at build time
    index_commit: str | None = None
    created: str = ""
    elapsed_ms: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def section(self, name: str) -> list[ContextItem]:
        return [i for i in self.items if i.section == name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "context": self.context,
            "format": self.format,
            "items": [i.to_dict() for i in self.items],
            "budget_chars": self.budget_chars,
            "used_chars": len(self.context),
            "project_source": self.project_source,
            "confidence": round(self.confidence, 3),
            "reasons": list(self.reasons),
            "commit": self.commit,
            "index_commit": self.index_commit,
            "prompt": self.prompt,
            "created": self.created,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "dropped": dict(self.dropped),
            "notes": list(self.notes),
        }
