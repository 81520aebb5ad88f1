"""Captured turns: one JSON line each in ``interactions/YYYY/MM/<session>.jsonl``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError
from ..ids import check_slug
from .fields import MAX_SHORT_CHARS, MAX_TURN_CHARS, Field, check_fields, decode_text, nonblank, now_iso, timestamp


INTERACTION_FIELDS = (
    Field("id", str, max_len=MAX_SHORT_CHARS, check=nonblank),
    Field("source", str, max_len=64, check=check_slug),
    Field("session_id", str, max_len=MAX_SHORT_CHARS, check=nonblank),
    Field("prompt", str, max_len=MAX_TURN_CHARS),
    Field("response", str, max_len=MAX_TURN_CHARS),
    Field("project", str, required=False, nullable=True, check=check_slug),
    Field("created", str, required=False, check=timestamp, default=now_iso),
    Field("meta", dict, required=False, default=dict),
)


@dataclass
class Interaction:
    id: str
    source: str
    session_id: str
    prompt: str
    response: str
    project: str | None = None
    created: str = field(default_factory=now_iso)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dump_line(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False).encode() + b"\n"


def interaction_from_dict(data: dict[str, Any]) -> Interaction:
    inter = Interaction(**check_fields(data, INTERACTION_FIELDS, ""))
    if not (inter.prompt.strip() or inter.response.strip()):
        raise ValidationError("prompt", "prompt and response are both empty; nothing to record")
    return inter


def interaction_path(inter: Interaction) -> str:
    """``interactions/YYYY/MM/<session>.jsonl``; the session id is made file-name safe."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inter.session_id)[:120].lstrip(".") or "session"
    return f"interactions/{inter.created[:4]}/{inter.created[5:7]}/{safe}.jsonl"


def parse_interactions(raw: bytes, path: str = "interactions") -> list[Interaction]:
    out = []
    for n, line in enumerate(decode_text(raw, path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}:{n}", f"is not valid JSON ({exc.msg})") from None
        try:
            out.append(interaction_from_dict(data))
        except ValidationError as exc:
            raise ValidationError(f"{path}:{n}: {exc.field}", str(exc).split(": ", 1)[-1]) from None
    return out
