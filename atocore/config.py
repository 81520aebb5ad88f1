"""Store configuration (``atocore.yaml`` at main) with environment overrides.

One schema (:func:`parse_config`) is used everywhere: at start-up, by every reader, and by the
gate for a proposal that changes ``atocore.yaml`` (docs/store.md, "The gate"). It is strict:
unknown keys, wrong types (``"5"`` for a number, ``"yes"`` for a boolean), values out of range,
regular expressions that do not compile or match the empty string, and malformed remotes are
refused with the field named.

A bad ``atocore.yaml`` that reaches main anyway (a push straight to main, a hand edit) never
takes the service down: :func:`load_config` then serves the last valid version from main's
history (or the defaults) and :func:`config_problem` says what is wrong (``/health``,
``atocore status``).
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ValidationError

log = logging.getLogger("atocore.config")

DEFAULT_MODEL = "minishlab/potion-base-8M"
CONFIG_PATH = "atocore.yaml"
REMOTE_SCHEMES = ("file", "ssh", "git", "git+ssh", "ssh+git", "http", "https")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The gate's caps (what may reach main) and refresh's caps (what one refresh may stage).
DEFAULT_LIMITS = {"max_file_bytes": 4_000_000, "max_change_bytes": 64_000_000, "max_change_files": 20_000}
DEFAULT_REFRESH = {"max_files": 50_000, "max_bytes": 256_000_000, "follow_symlinks": False}


@dataclass
class StoreConfig:
    schema: int = 1
    embed_model: str = DEFAULT_MODEL
    chunk_max_chars: int = 1500
    chunk_overlap_chars: int = 0
    remotes: dict[str, str] = field(default_factory=dict)
    retention: dict[str, int] = field(default_factory=lambda: {"keep_last": 20, "daily_days": 14, "weekly_weeks": 8})
    extract: bool = False
    redact_patterns: list[str] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    refresh: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_REFRESH))
    reviewer: str | None = None     # review.reviewer: the name the /ui pages sign approvals with
    raw: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- the schema


def _where(key: str) -> str:
    return f"{CONFIG_PATH}: {key}" if key else CONFIG_PATH


def _mapping(data: Any, key: str, allowed: tuple[str, ...]) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(_where(key), f"must be a mapping, not {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ValidationError(_where(f"{key}.{unknown[0]}" if key else unknown[0]), "is not a known setting",
                              allowed)
    return data


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(_where(key), f"must be a whole number between {lo} and {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValidationError(_where(key), f"{value} is out of range ({lo} to {hi})")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(_where(key), f"must be true or false, not {value!r}")
    return value


def _text(value: Any, key: str, max_len: int = 500) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_where(key), f"must be a non-empty string, not {value!r}")
    if len(value) > max_len or _CONTROL.search(value):
        raise ValidationError(_where(key), f"must be one line of at most {max_len} characters")
    return value


def check_pattern(pattern: Any, key: str) -> str:
    """A redaction pattern must compile and must not match the empty string (it would mark
    every position of every captured text)."""
    text = _text(pattern, key, 1000)
    try:
        compiled = re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValidationError(_where(key), f"{text!r} is not a valid regular expression ({exc})") from None
    if any(m.group(0) == "" for m in compiled.finditer("an ordinary sentence, 42 words.")) or compiled.match(""):
        raise ValidationError(_where(key), f"{text!r} matches the empty string; it would redact everything")
    return text


def check_remote(name: Any, url: Any) -> tuple[str, str]:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValidationError(_where(f"remotes.{name}"), "a remote name is letters, digits, '.', '_' or '-' "
                              "(at most 64, starting with a letter or digit)")
    key = f"remotes.{name}"
    url = _text(url, key, 2000).strip()
    if url.startswith("-"):
        raise ValidationError(_where(key), f"{url!r} must not start with '-'")
    if "::" in url.split("://", 1)[0]:
        raise ValidationError(_where(key), f"{url!r} uses a git remote helper ('<helper>::'), which is not allowed",
                              ["a path", *(f"{s}://" for s in REMOTE_SCHEMES)])
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in REMOTE_SCHEMES:
            raise ValidationError(_where(key), f"{url!r} uses an unsupported scheme {scheme!r}",
                                  ["a path", *(f"{s}://" for s in REMOTE_SCHEMES)])
        if not url.split("://", 1)[1].strip("/"):
            raise ValidationError(_where(key), f"{url!r} names no host or path")
    return name, url


_PARSED: dict[bytes, Any] = {}  # atocore.yaml content -> parsed YAML (every capture reads the config)


def _load_yaml(raw: bytes, text: str) -> Any:
    if raw not in _PARSED:
        if len(_PARSED) > 16:
            _PARSED.clear()
        _PARSED[raw] = yaml.safe_load(text)
    return copy.deepcopy(_PARSED[raw])  # callers may change what they get


def parse_config(raw: bytes | None) -> StoreConfig:
    """The configuration in ``raw`` (``None``: the defaults); ``ValidationError`` naming the field."""
    data: Any = {}
    if raw:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(CONFIG_PATH, "is not UTF-8 text") from None
        try:
            data = _load_yaml(raw, text)
        except yaml.YAMLError as exc:
            raise ValidationError(CONFIG_PATH, f"is not valid YAML ({str(exc).splitlines()[0]})") from None
        except RecursionError:
            raise ValidationError(CONFIG_PATH, "is nested too deeply") from None
    if data is None:
        data = {}
    data = _mapping(data, "", ("schema", "embedding", "chunking", "remotes", "retention", "capture", "limits",
                               "refresh", "review"))
    cfg = StoreConfig(raw=data)
    if "schema" in data:
        cfg.schema = _int(data["schema"], "schema", 1, 1)
    emb = _mapping(data.get("embedding"), "embedding", ("model",))
    if "model" in emb:
        cfg.embed_model = _text(emb["model"], "embedding.model")
    chunk = _mapping(data.get("chunking"), "chunking", ("max_chars", "overlap_chars"))
    if "max_chars" in chunk:
        cfg.chunk_max_chars = _int(chunk["max_chars"], "chunking.max_chars", 100, 100_000)
    if "overlap_chars" in chunk:
        cfg.chunk_overlap_chars = _int(chunk["overlap_chars"], "chunking.overlap_chars", 0, 100_000)
    if cfg.chunk_overlap_chars * 2 > cfg.chunk_max_chars:
        raise ValidationError(_where("chunking.overlap_chars"), f"{cfg.chunk_overlap_chars} must be at most half "
                              f"of chunking.max_chars ({cfg.chunk_max_chars})")
    remotes = data.get("remotes")
    if remotes is not None and not isinstance(remotes, dict):
        raise ValidationError(_where("remotes"), "must be a mapping of name: path or URL")
    cfg.remotes = dict(check_remote(k, v) for k, v in (remotes or {}).items())
    ret = _mapping(data.get("retention"), "retention", ("keep_last", "daily_days", "weekly_weeks"))
    for key, value in ret.items():
        cfg.retention[key] = _int(value, f"retention.{key}", 0, 100_000)
    cap = _mapping(data.get("capture"), "capture", ("extract", "redact_patterns"))
    if "extract" in cap:
        cfg.extract = _bool(cap["extract"], "capture.extract")
    pats = cap.get("redact_patterns")
    if pats is not None:
        if not isinstance(pats, list) or len(pats) > 200:
            raise ValidationError(_where("capture.redact_patterns"), "must be a list of at most 200 regular expressions")
        cfg.redact_patterns = [check_pattern(p, f"capture.redact_patterns[{i}]") for i, p in enumerate(pats)]
    rev = _mapping(data.get("review"), "review", ("reviewer",))
    if "reviewer" in rev:
        cfg.reviewer = _text(rev["reviewer"], "review.reviewer")
    lim = _mapping(data.get("limits"), "limits", tuple(DEFAULT_LIMITS))
    for key, value in lim.items():
        cfg.limits[key] = _int(value, f"limits.{key}", 1, 10**12)
    ref = _mapping(data.get("refresh"), "refresh", tuple(DEFAULT_REFRESH))
    for key, value in ref.items():
        cfg.refresh[key] = (_bool(value, f"refresh.{key}") if key == "follow_symlinks"
                            else _int(value, f"refresh.{key}", 1, 10**12))
    if os.environ.get("ATOCORE_EMBED_MODEL"):
        cfg.embed_model = os.environ["ATOCORE_EMBED_MODEL"]
    return cfg


def validate_config(raw: bytes) -> StoreConfig:
    """The gate's check of a proposed ``atocore.yaml`` (the same schema as at start-up)."""
    return parse_config(raw)


# ----------------------------------------------------------------------------- reading main

# (store path, blob sha of a bad atocore.yaml, rev) -> (last good config, what is wrong)
_FALLBACK: "OrderedDict[tuple[str, str], tuple[StoreConfig, str]]" = OrderedDict()


def _fallback(store, blob: str, rev: str, error: ValidationError) -> tuple[StoreConfig, str]:
    key = (str(store.path), blob)
    hit = _FALLBACK.get(key)
    if hit is not None:
        return hit
    good, source = StoreConfig(), "the built-in defaults"
    try:
        history = store.log(rev, path=CONFIG_PATH, limit=200)
    except Exception:  # noqa: BLE001 - a broken history still gets the defaults
        history = []
    for info in history:
        try:
            raw = store.read(CONFIG_PATH, info.sha)
            if raw is None:
                continue
            good, source = parse_config(raw), f"the last valid version (commit {info.sha[:12]})"
            break
        except ValidationError:
            continue
        except Exception:  # noqa: BLE001
            continue
    problem = (f"{error} -- the service keeps running with {source}; fix atocore.yaml on main "
               "(e.g. propose the corrected file, or 'atocore restore' an earlier commit)")
    log.warning("invalid store configuration: %s", problem)
    _FALLBACK[key] = (good, problem)
    while len(_FALLBACK) > 32:
        _FALLBACK.popitem(last=False)
    return good, problem


def load_config_checked(store, rev: str = "main") -> tuple[StoreConfig, str | None]:
    """(the config to use, what is wrong with the one at ``rev`` or None)."""
    blob = store.blob_id(CONFIG_PATH, rev)
    if blob is None:
        return parse_config(None), None
    try:
        return parse_config(store.read_blob(blob)), None
    except ValidationError as exc:
        good, problem = _fallback(store, blob, rev, exc)
        cfg = copy.deepcopy(good)
        if os.environ.get("ATOCORE_EMBED_MODEL"):
            cfg.embed_model = os.environ["ATOCORE_EMBED_MODEL"]
        return cfg, problem


def load_config(store, rev: str = "main") -> StoreConfig:
    return load_config_checked(store, rev)[0]


def config_problem(store, rev: str = "main") -> str | None:
    try:
        return load_config_checked(store, rev)[1]
    except Exception as exc:  # noqa: BLE001 - reported, never raised to a health check
        return f"{CONFIG_PATH}: cannot be read ({type(exc).__name__}: {exc})"
