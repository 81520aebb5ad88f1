"""Project registrations: ``projects/<id>.yaml``, the source roots a refresh stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError
from ..ids import check_slug
from .fields import (MAX_DESCRIPTION_CHARS, MAX_SHORT_CHARS, PROJECT_STATUSES, Field, check_fields, decode_text,
                     nonblank, now_iso, short_strings, timestamp, yaml_dump, yaml_load)


def _globs(value: list, path: str) -> list:
    short_strings(value, path)
    for i, g in enumerate(value):
        if g.startswith("/") or ".." in g.split("/"):
            raise ValidationError(f"{path}[{i}]", f"{g!r} must be a relative glob without '..'")
    return value


# Text formats staged by default; anything else is opt-in through a source root's ``include``.
DEFAULT_INCLUDE = ("**/*.md", "**/*.markdown", "**/*.mdx", "**/*.txt", "**/*.text", "**/*.rst")

SOURCE_ROOT_FIELDS = (
    Field("path", str, max_len=1000, check=nonblank),
    Field("include", list, required=False, max_len=50, check=_globs, default=lambda: list(DEFAULT_INCLUDE)),
    Field("exclude", list, required=False, max_len=50, check=_globs, default=list),
)


@dataclass
class SourceRoot:
    path: str
    include: list[str] = field(default_factory=lambda: list(DEFAULT_INCLUDE))
    exclude: list[str] = field(default_factory=list)


PROJECT_FIELDS = (
    Field("id", str, check=check_slug),
    Field("name", str, max_len=MAX_SHORT_CHARS, check=nonblank),
    Field("description", str, required=False, max_len=MAX_DESCRIPTION_CHARS, default=""),
    Field("aliases", list, required=False, max_len=30, check=short_strings, default=list),
    Field("sources", list, required=False, max_len=20, default=list),
    Field("status", str, required=False, choices=PROJECT_STATUSES, default="proposed"),
    Field("created", str, required=False, check=timestamp, default=now_iso),
)


@dataclass
class Project:
    id: str
    name: str
    description: str = ""
    aliases: list[str] = field(default_factory=list)
    sources: list[SourceRoot] = field(default_factory=list)
    status: str = "proposed"
    created: str = field(default_factory=now_iso)

    @property
    def path(self) -> str:
        return project_path(self.id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dump(self) -> bytes:
        return yaml_dump(self.to_dict()).encode()


def project_path(project_id: str) -> str:
    return f"projects/{check_slug(project_id, 'project')}.yaml"


def project_from_dict(data: dict[str, Any]) -> Project:
    meta = check_fields(data, PROJECT_FIELDS, "")
    meta["sources"] = [SourceRoot(**check_fields(s, SOURCE_ROOT_FIELDS, f"sources[{i}]")) for i, s in enumerate(meta["sources"])]
    return Project(**meta)


def parse_project(raw: bytes, path: str = "project") -> Project:
    proj = project_from_dict(yaml_load(decode_text(raw, path), path))
    if path.startswith("projects/") and path != proj.path:
        raise ValidationError(f"{path}: id", f"{proj.id!r} does not match the file name")
    return proj
