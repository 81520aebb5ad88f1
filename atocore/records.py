"""The record types of a store, their file formats and their validation.

Every write path calls one of the ``*_from_dict`` / ``parse_*`` functions before anything is
committed, so a bad field is reported (naming the field and the allowed values) and nothing
is written. The same functions check files that arrive by ``git push``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import yaml

from .errors import ValidationError
from .ids import check_record_id, check_slug

try:  # the C loader is ~12x faster on thousands of small records
    _Loader: type = yaml.CSafeLoader
    _Dumper: type = yaml.CSafeDumper
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader, _Dumper = yaml.SafeLoader, yaml.SafeDumper

MEMORY_TYPES = ("identity", "preference", "project", "episodic", "knowledge", "adaptation")
MEMORY_STATUSES = ("candidate", "active", "superseded", "invalid")
STATE_CATEGORIES = ("summary", "decision", "constraint", "focus", "status", "fact", "contact")
PROJECT_STATUSES = ("proposed", "approved")

MAX_MEMORY_CHARS = 8_000
MAX_STATE_VALUE_CHARS = 1_000
MAX_SHORT_CHARS = 200
MAX_DESCRIPTION_CHARS = 2_000
MAX_TURN_CHARS = 200_000


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- field checks


@dataclass(frozen=True)
class Field:
    name: str
    kind: type | tuple[type, ...]
    required: bool = True
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    max_len: int | None = None
    check: Callable[[Any, str], Any] | None = None
    default: Any = None


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "text", int: "integer", float: "number", list: "list", dict: "mapping", bool: "true/false"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _coerce_timestamp(value: Any) -> Any:
    # Hand-edited YAML turns an unquoted ISO date into a datetime; keep timestamps as text.
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


_KNOWN: dict[int, tuple[Iterable[Field], list[tuple], frozenset[str]]] = {}


def _field_set(fields: Iterable[Field]) -> tuple[list[tuple], frozenset[str]]:
    # Field attributes unpacked once into plain tuples: reading 10,000 records calls this a lot.
    cached = _KNOWN.get(id(fields))
    if cached is None or cached[0] is not fields:
        tup = tuple(fields)
        specs = [(f, f.name, f.kind if isinstance(f.kind, tuple) else (f.kind,), f.required, f.nullable, f.choices,
                  f.max_len, f.check) for f in tup]
        cached = (fields, specs, frozenset(f.name for f in tup))
        if isinstance(fields, tuple):
            _KNOWN[id(fields)] = cached
    return cached[1], cached[2]


def check_fields(data: Any, fields: Iterable[Field], where: str) -> dict[str, Any]:
    """Validate a mapping against ``fields``; return a new dict with defaults filled in."""
    specs, known = _field_set(fields)
    if not isinstance(data, dict):
        raise ValidationError(where, f"must be a mapping of fields, got {_type_name(type(data))}")
    for key in data:
        if key not in known:
            raise ValidationError(f"{where}.{key}" if where else str(key), "unknown field", sorted(known))
    out: dict[str, Any] = {}
    for f, name, kinds, required, nullable, choices, max_len, check in specs:
        value = data.get(name, _MISSING)
        if value is _MISSING or (value is None and not nullable and not required):
            if required:
                raise ValidationError(f"{where}.{name}" if where else name, "is required")
            out[name] = f.default() if callable(f.default) else f.default
            continue
        if type(value) is str:
            if kinds[0] is not str and str not in kinds:
                raise ValidationError(f"{where}.{name}" if where else name, f"must be {_type_name(f.kind)}, got str")
        else:
            value = _coerce_timestamp(value)
            if value is None:
                if not nullable:
                    raise ValidationError(f"{where}.{name}" if where else name,
                                          f"must be {_type_name(f.kind)}, not empty")
                out[name] = None
                continue
            if float in kinds and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                raise ValidationError(f"{where}.{name}" if where else name,
                                      f"must be {_type_name(f.kind)}, got {type(value).__name__}")
        if choices is not None and value not in choices:
            raise ValidationError(f"{where}.{name}" if where else name, f"{value!r} is not allowed", choices)
        if max_len is not None and isinstance(value, (str, list)) and len(value) > max_len:
            unit = "characters" if isinstance(value, str) else "items"
            raise ValidationError(f"{where}.{name}" if where else name,
                                  f"is too long ({len(value)} {unit}; at most {max_len})")
        if type(value) is str and "\x00" in value:
            raise ValidationError(f"{where}.{name}" if where else name, "must not contain NUL characters")
        if check is not None:
            value = check(value, f"{where}.{name}" if where else name)
        out[name] = value
    return out


_MISSING = object()


def _unit_interval(value: float, path: str) -> float:
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValidationError(path, f"must be between 0 and 1, got {value}")
    return value


def _timestamp(value: str, path: str) -> str:
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(path, f"{value!r} is not an ISO-8601 timestamp (e.g. 2026-01-31T12:00:00Z)") from None
    return value


def _nonblank(value: str, path: str) -> str:
    if not value.strip():
        raise ValidationError(path, "must not be empty")
    return value


def _short_strings(value: list, path: str) -> list:
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_SHORT_CHARS:
            raise ValidationError(f"{path}[{i}]", f"must be non-empty text of at most {MAX_SHORT_CHARS} characters")
    return value


def decode_text(raw: bytes, field_name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(field_name, f"is not valid UTF-8 (bad byte at offset {exc.start})") from None


def _yaml_load(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValidationError(where, f"is not valid YAML: {exc}".splitlines()[0]) from None


def _yaml_dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


# --------------------------------------------------------------------------- memories

MEMORY_FIELDS = (
    Field("id", str, check=check_record_id),
    Field("type", str, choices=MEMORY_TYPES),
    Field("project", str, required=False, nullable=True, check=check_slug),
    Field("status", str, required=False, choices=MEMORY_STATUSES, default="active"),
    Field("confidence", float, required=False, check=_unit_interval, default=1.0),
    Field("source", str, required=False, max_len=MAX_SHORT_CHARS, default="manual"),
    Field("created", str, required=False, check=_timestamp, default=now_iso),
    Field("updated", str, required=False, check=_timestamp, default=now_iso),
    Field("supersedes", str, required=False, nullable=True, check=check_record_id),
    Field("tags", list, required=False, max_len=20, check=_short_strings, default=list),
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


# Front matter is YAML. We write it in a narrow, unambiguous subset (one ``key: value`` per line;
# values are null, true/false, plain lower-case words, decimal numbers, or JSON strings / lists
# of strings, all of which YAML reads the same way) so reading 10,000 memories can skip the YAML
# parser. Anything outside that subset (a hand edit, a comment) falls back to full YAML.
_FM_PLAIN = re.compile(r"^[a-z][a-z0-9._-]*$")
_FM_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_FM_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_FM_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+$")
_FM_SAFE_TEXT = re.compile(r"^[\x20-\x7e]*$")
_YAML_WORDS = frozenset("yes no true false on off null".split())
_NO_VALUE = object()


def _fm_value(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if _FM_FLOAT.match(text) or _FM_INT.match(text) else None
    if isinstance(value, str):
        if not _FM_SAFE_TEXT.match(value):
            return None
        if _FM_PLAIN.match(value) and value not in _YAML_WORDS:
            return value
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) and _FM_SAFE_TEXT.match(v) for v in value):
        return json.dumps(value)
    return None


def dump_front_matter(meta: dict[str, Any]) -> str:
    lines = []
    for key, value in meta.items():
        text = _fm_value(value)
        if text is None or not _FM_KEY.match(key) or key in _YAML_WORDS:  # unusual: let YAML quote it
            return _yaml_dump(meta)
        lines.append(f"{key}: {text}\n")
    return "".join(lines)


def _fm_parse_value(text: str) -> Any:
    if text == "null":
        return None
    if text in ("true", "false"):
        return text == "true"
    first = text[:1]
    if (first == '"' and len(text) >= 2 and text[-1] == '"' and "\\" not in text and '"' not in text[1:-1]
            and text.isprintable()):
        return text[1:-1]
    if first == '"' or first == "[":
        try:
            value = json.loads(text)
        except ValueError:
            return _NO_VALUE
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        return _NO_VALUE
    if first == "'":
        inner = text[1:-1]
        ok = len(text) >= 2 and text[-1] == "'" and "'" not in inner and inner.isprintable()
        return inner if ok else _NO_VALUE
    if _FM_INT.match(text):
        return int(text)
    if _FM_FLOAT.match(text):
        return float(text)
    if _FM_PLAIN.match(text) and text not in _YAML_WORDS:
        return text
    return _NO_VALUE


_FM_KEYS: dict[str, bool] = {}
_FM_PLAIN_SEEN: dict[str, bool] = {}


def _load_front_matter(text: str, where: str) -> Any:
    out: dict[str, Any] = {}
    for line in text.split("\n"):
        key, sep, raw = line.partition(": ")
        ok = _FM_KEYS.get(key)
        if ok is None:
            ok = bool(_FM_KEY.match(key)) and key not in _YAML_WORDS
            if len(_FM_KEYS) < 1000:
                _FM_KEYS[key] = ok
        if not ok or not sep:
            return _yaml_load(text, where)
        plain = _FM_PLAIN_SEEN.get(raw)
        if plain:
            value: Any = raw
        else:
            value = _fm_parse_value(raw)
            if value is _NO_VALUE:
                return _yaml_load(text, where)
            if value is raw and len(_FM_PLAIN_SEEN) < 10_000:
                _FM_PLAIN_SEEN[raw] = True  # plain words repeat a lot (types, statuses, projects)
        out[key] = value
    return out


def split_front_matter(text: str, where: str) -> tuple[Any, str]:
    if not text.startswith("---\n"):
        raise ValidationError(where, "must start with a '---' YAML front matter block")
    end = text.find("\n---\n", 3)
    if end < 0:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise ValidationError(where, "front matter is not closed by a '---' line")
    return _load_front_matter(text[4:end], where), text[end + 5 :]


def parse_memory(raw: bytes, path: str = "memory") -> Memory:
    meta, body = split_front_matter(decode_text(raw, path), path)
    if not isinstance(meta, dict):
        raise ValidationError(path, "front matter must be a mapping of fields")
    mem = memory_from_dict({**meta, "text": body})
    expected = f"memories/{mem.id}.md"
    if path.startswith("memories/") and path != expected:
        raise ValidationError(f"{path}: id", f"{mem.id!r} does not match the file name (expected {expected})")
    return mem


# --------------------------------------------------------------------------- trusted state

STATE_ENTRY_FIELDS = (
    Field("category", str, choices=STATE_CATEGORIES),
    Field("key", str, check=check_slug),
    Field("value", str, max_len=MAX_STATE_VALUE_CHARS, check=_nonblank),
    Field("source", str, required=False, max_len=MAX_SHORT_CHARS, default="manual"),
    Field("updated", str, required=False, check=_timestamp, default=now_iso),
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
        return _yaml_dump({"project": self.project, "entries": [e.to_dict() for e in self.entries]}).encode()


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
    data = check_fields(_yaml_load(decode_text(raw, path), path), STATE_FILE_FIELDS, "")
    entries = [state_entry_from_dict(e, f"entries[{i}]") for i, e in enumerate(data["entries"])]
    keys = [e.key for e in entries]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup:
        raise ValidationError("entries", f"key {dup!r} appears more than once")
    state = ProjectState(project=data["project"], entries=entries)
    if path.startswith("state/") and path != state.path:
        raise ValidationError(f"{path}: project", f"{state.project!r} does not match the file name")
    return state


# --------------------------------------------------------------------------- project registrations


def _globs(value: list, path: str) -> list:
    _short_strings(value, path)
    for i, g in enumerate(value):
        if g.startswith("/") or ".." in g.split("/"):
            raise ValidationError(f"{path}[{i}]", f"{g!r} must be a relative glob without '..'")
    return value


# Text formats staged by default; anything else is opt-in through a source root's ``include``.
DEFAULT_INCLUDE = ("**/*.md", "**/*.markdown", "**/*.mdx", "**/*.txt", "**/*.text", "**/*.rst")

SOURCE_ROOT_FIELDS = (
    Field("path", str, max_len=1000, check=_nonblank),
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
    Field("name", str, max_len=MAX_SHORT_CHARS, check=_nonblank),
    Field("description", str, required=False, max_len=MAX_DESCRIPTION_CHARS, default=""),
    Field("aliases", list, required=False, max_len=30, check=_short_strings, default=list),
    Field("sources", list, required=False, max_len=20, default=list),
    Field("status", str, required=False, choices=PROJECT_STATUSES, default="proposed"),
    Field("created", str, required=False, check=_timestamp, default=now_iso),
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
        return _yaml_dump(self.to_dict()).encode()


def project_path(project_id: str) -> str:
    return f"projects/{check_slug(project_id, 'project')}.yaml"


def project_from_dict(data: dict[str, Any]) -> Project:
    meta = check_fields(data, PROJECT_FIELDS, "")
    meta["sources"] = [SourceRoot(**check_fields(s, SOURCE_ROOT_FIELDS, f"sources[{i}]")) for i, s in enumerate(meta["sources"])]
    return Project(**meta)


def parse_project(raw: bytes, path: str = "project") -> Project:
    proj = project_from_dict(_yaml_load(decode_text(raw, path), path))
    if path.startswith("projects/") and path != proj.path:
        raise ValidationError(f"{path}: id", f"{proj.id!r} does not match the file name")
    return proj


# --------------------------------------------------------------------------- interactions

INTERACTION_FIELDS = (
    Field("id", str, max_len=MAX_SHORT_CHARS, check=_nonblank),
    Field("source", str, max_len=64, check=check_slug),
    Field("session_id", str, max_len=MAX_SHORT_CHARS, check=_nonblank),
    Field("prompt", str, max_len=MAX_TURN_CHARS),
    Field("response", str, max_len=MAX_TURN_CHARS),
    Field("project", str, required=False, nullable=True, check=check_slug),
    Field("created", str, required=False, check=_timestamp, default=now_iso),
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


# --------------------------------------------------------------------------- golden questions (atocore eval)

GOLDEN_PREFIX = "eval/"
MAX_GOLDEN_QUESTIONS = 2_000
MAX_QUESTION_CHARS = 2_000


def _source_paths(value: list, path: str) -> list:
    _short_strings(value, path)
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
    Field("question", str, max_len=MAX_QUESTION_CHARS, check=_nonblank),
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
    data = check_fields(_yaml_load(decode_text(raw, path), path), GOLDEN_FILE_FIELDS, "")
    out = [golden_question_from_dict(q, f"questions[{i}]") for i, q in enumerate(data["questions"])]
    ids = [q.id for q in out if q.id]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise ValidationError("questions", f"id {dup!r} appears more than once")
    return out


# --------------------------------------------------------------------------- dispatch by path


def validate_path(path: str, raw: bytes) -> object | None:
    """Parse and validate a store file by where it lives; ``None`` for files with no schema.

    Raises ``ValidationError`` for a file that breaks its schema. Used for review branches
    and for content that reaches main by a push, which is then reported and not indexed.
    """
    if path.startswith("memories/") and path.endswith(".md"):
        return parse_memory(raw, path)
    if path.startswith("state/") and path.endswith(".yaml"):
        return parse_state(raw, path)
    if path.startswith("projects/") and path.endswith(".yaml"):
        return parse_project(raw, path)
    if path.startswith("interactions/") and path.endswith(".jsonl"):
        return parse_interactions(raw, path)
    if path.startswith(GOLDEN_PREFIX) and path.endswith((".yaml", ".yml")):
        return parse_golden(raw, path)
    if path == "atocore.yaml":
        from .config import validate_config  # the same schema as at start-up

        return validate_config(raw)
    return None
