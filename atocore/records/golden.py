"""Golden questions (``atocore eval``): ``eval/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..ids import check_slug
from .fields import MAX_SHORT_CHARS, Field, check_fields, decode_text, nonblank, short_strings, yaml_load


GOLDEN_PREFIX = "eval/"
MAX_GOLDEN_QUESTIONS = 2_000
MAX_QUESTION_CHARS = 2_000


def _source_paths(value: list, path: str) -> list:
    short_strings(value, path)
    for i, s in enumerate(value):
        if s.startswith("/") or "\\" in s or ".." in s.split("/"):
            raise ValidationError(f"{path}[{i}]", f"{s!r} must be a path relative to the project's source root "
                                                  "(as a search hit's 'source'), without '..'")
    return value


def _nonempty_list(value: list, path: str) -> list:
    if not value:
        raise ValidationError(path, "must list at least one question")
    return value


def _state_keys(value: list, path: str) -> list:
    for i, k in enumerate(value):
        if not isinstance(k, str):
            raise ValidationError(f"{path}[{i}]", "must be a trusted-state key (text)")
        check_slug(k, f"{path}[{i}]")
    return value


GOLDEN_QUESTION_FIELDS = (
    Field("question", str, max_len=MAX_QUESTION_CHARS, check=nonblank),
    Field("project", str, required=False, nullable=True, check=check_slug),
    Field("sources", list, required=False, max_len=100, check=_source_paths, default=list),
    Field("state", list, required=False, max_len=100, check=_state_keys, default=list),
    Field("id", str, required=False, nullable=True, max_len=MAX_SHORT_CHARS),
)
GOLDEN_FILE_FIELDS = (Field("questions", list, max_len=MAX_GOLDEN_QUESTIONS, check=_nonempty_list),)


@dataclass
class GoldenQuestion:
    """One of a person's own evaluation questions: what they ask and what should come back."""

    question: str
    project: str | None = None
    sources: list[str] = field(default_factory=list)  # paths relative to the project's source root
    state: list[str] = field(default_factory=list)  # trusted-state keys of ``project``
    id: str | None = None


def golden_question_from_dict(data: dict[str, Any], where: str = "") -> GoldenQuestion:
    q = GoldenQuestion(**check_fields(data, GOLDEN_QUESTION_FIELDS, where))
    if not q.sources and not q.state:
        raise ValidationError(where or "question", "needs what should be found: 'sources' (paths) and/or "
                                                   "'state' (trusted-state keys)")
    if q.state and q.project is None:
        raise ValidationError(f"{where}.state" if where else "state", "trusted-state keys need the question's 'project'")
    return q


def parse_golden(raw: bytes, path: str = "golden") -> list[GoldenQuestion]:
    """A golden-questions file (``eval/*.yaml``): ``questions:`` a list of question/project/sources/state."""
    data = check_fields(yaml_load(decode_text(raw, path), path), GOLDEN_FILE_FIELDS, "")
    out = [golden_question_from_dict(q, f"questions[{i}]") for i, q in enumerate(data["questions"])]
    ids = [q.id for q in out if q.id]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise ValidationError("questions", f"id {dup!r} appears more than once")
    return out
