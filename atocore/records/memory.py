"""Memories: ``memories/<id>.md``, front matter plus the text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError
from ..ids import check_record_id, check_slug
from .fields import (MAX_MEMORY_CHARS, MAX_SHORT_CHARS, MEMORY_STATUSES, MEMORY_TYPES, Field, check_fields,
                     decode_text, now_iso, short_strings, timestamp, unit_interval)
from .frontmatter import dump_front_matter, split_front_matter


MEMORY_FIELDS = (
    Field("id", str, check=check_record_id),
    Field("type", str, choices=MEMORY_TYPES),
    Field("project", str, required=False, nullable=True, check=check_slug),
    Field("status", str, required=False, choices=MEMORY_STATUSES, default="active"),
    Field("confidence", float, required=False, check=unit_interval, default=1.0),
    Field("source", str, required=False, max_len=MAX_SHORT_CHARS, default="manual"),
    Field("created", str, required=False, check=timestamp, default=now_iso),
    Field("updated", str, required=False, check=timestamp, default=now_iso),
    Field("supersedes", str, required=False, nullable=True, check=check_record_id),
    Field("tags", list, required=False, max_len=20, check=short_strings, default=list),
)


@dataclass
class Memory:
    id: str
    type: str
    text: str
    project: str | None = None
    status: str = "active"
    confidence: float = 1.0
    source: str = "manual"
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    supersedes: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return memory_path(self.id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dump(self) -> bytes:
        meta = self.to_dict()
        body = meta.pop("text")
        return f"---\n{dump_front_matter(meta)}---\n{body.rstrip()}\n".encode()


def memory_path(memory_id: str) -> str:
    return f"memories/{check_record_id(memory_id)}.md"


def memory_from_dict(data: dict[str, Any]) -> Memory:
    data = dict(data)
    text = data.pop("text", None)
    meta = check_fields(data, MEMORY_FIELDS, "")
    return Memory(text=_check_body(text), **meta)


def _check_body(text: Any) -> str:
    if not isinstance(text, str):
        raise ValidationError("text", "is required and must be text")
    if "\x00" in text:
        raise ValidationError("text", "must not contain NUL characters")
    text = text.strip()
    if not text:
        raise ValidationError("text", "must not be empty")
    if len(text) > MAX_MEMORY_CHARS:
        raise ValidationError("text", f"is too long ({len(text)} characters; at most {MAX_MEMORY_CHARS})")
    return text


def parse_memory(raw: bytes, path: str = "memory") -> Memory:
    meta, body = split_front_matter(decode_text(raw, path), path)
    if not isinstance(meta, dict):
        raise ValidationError(path, "front matter must be a mapping of fields")
    mem = memory_from_dict({**meta, "text": body})
    expected = f"memories/{mem.id}.md"
    if path.startswith("memories/") and path != expected:
        raise ValidationError(f"{path}: id", f"{mem.id!r} does not match the file name (expected {expected})")
    return mem
