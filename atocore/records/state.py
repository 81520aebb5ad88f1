"""Trusted project state: ``state/<project>.yaml``, keyed entries by category."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError
from ..ids import check_slug
from .fields import (MAX_SHORT_CHARS, MAX_STATE_VALUE_CHARS, STATE_CATEGORIES, Field, check_fields, decode_text,
                     nonblank, now_iso, timestamp, yaml_dump, yaml_load)


STATE_ENTRY_FIELDS = (
    Field("category", str, choices=STATE_CATEGORIES),
    Field("key", str, check=check_slug),
    Field("value", str, max_len=MAX_STATE_VALUE_CHARS, check=nonblank),
    Field("source", str, required=False, max_len=MAX_SHORT_CHARS, default="manual"),
    Field("updated", str, required=False, check=timestamp, default=now_iso),
)


@dataclass
class StateEntry:
    category: str
    key: str
    value: str
    source: str = "manual"
    updated: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ProjectState:
    project: str
    entries: list[StateEntry] = field(default_factory=list)

    @property
    def path(self) -> str:
        return state_path(self.project)

    def get(self, key: str) -> StateEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def upsert(self, entry: StateEntry) -> None:
        self.entries = [e for e in self.entries if e.key != entry.key] + [entry]

    def dump(self) -> bytes:
        return yaml_dump({"project": self.project, "entries": [e.to_dict() for e in self.entries]}).encode()


def state_path(project: str) -> str:
    return f"state/{check_slug(project, 'project')}.yaml"


def state_entry_from_dict(data: dict[str, Any], where: str = "") -> StateEntry:
    return StateEntry(**check_fields(data, STATE_ENTRY_FIELDS, where))


MAX_STATE_ENTRIES = 50
# A module constant: check_fields caches per fields tuple, so a tuple built per call would
# add (and keep alive) one cache entry per parsed file.
STATE_FILE_FIELDS = (
    Field("project", str, check=check_slug),
    Field("entries", list, required=False, max_len=MAX_STATE_ENTRIES, default=list),
)


def parse_state(raw: bytes, path: str = "state") -> ProjectState:
    data = check_fields(yaml_load(decode_text(raw, path), path), STATE_FILE_FIELDS, "")
    entries = [state_entry_from_dict(e, f"entries[{i}]") for i, e in enumerate(data["entries"])]
    keys = [e.key for e in entries]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup:
        raise ValidationError("entries", f"key {dup!r} appears more than once")
    state = ProjectState(project=data["project"], entries=entries)
    if path.startswith("state/") and path != state.path:
        raise ValidationError(f"{path}: project", f"{state.project!r} does not match the file name")
    return state
