"""The validation engine: declared fields checked one by one, naming the field and what is allowed.

Every record type (memories, state, projects, interactions, golden questions) declares a
tuple of :class:`Field` and calls :func:`check_fields`; the limits shared by the types live here.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import yaml

from ..errors import ValidationError

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


def unit_interval(value: float, path: str) -> float:
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValidationError(path, f"must be between 0 and 1, got {value}")
    return value


def timestamp(value: str, path: str) -> str:
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(path, f"{value!r} is not an ISO-8601 timestamp (e.g. 2026-01-31T12:00:00Z)") from None
    return value


def nonblank(value: str, path: str) -> str:
    if not value.strip():
        raise ValidationError(path, "must not be empty")
    return value


def short_strings(value: list, path: str) -> list:
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_SHORT_CHARS:
            raise ValidationError(f"{path}[{i}]", f"must be non-empty text of at most {MAX_SHORT_CHARS} characters")
    return value


def decode_text(raw: bytes, field_name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(field_name, f"is not valid UTF-8 (bad byte at offset {exc.start})") from None


def yaml_load(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValidationError(where, f"is not valid YAML: {exc}".splitlines()[0]) from None


def yaml_dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
