"""Markdown front matter: the narrow YAML subset memories are written in, read without the YAML
parser when it can be (a hand edit falls back to full YAML)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ValidationError
from .fields import yaml_dump, yaml_load


# Front matter is YAML. We write it in a narrow, unambiguous subset (one ``key: value`` per line;
# values are null, true/false, plain lower-case words, decimal numbers, or JSON strings / lists
# of strings, all of which YAML reads the same way) so reading 10,000 memories can skip the YAML
# parser. Anything outside that subset (a hand edit, a comment) falls back to full YAML.
_FM_PLAIN = re.compile(r"^[a-z][a-z0-9._-]*\Z")
_FM_KEY = re.compile(r"^[a-z_][a-z0-9_]*\Z")
_FM_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)\Z")
_FM_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_FM_SAFE_TEXT = re.compile(r"^[\x20-\x7e]*\Z")
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
            return yaml_dump(meta)
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
            return yaml_load(text, where)
        plain = _FM_PLAIN_SEEN.get(raw)
        if plain:
            value: Any = raw
        else:
            value = _fm_parse_value(raw)
            if value is _NO_VALUE:
                return yaml_load(text, where)
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
