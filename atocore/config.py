"""Store configuration (``atocore.yaml`` at main) with environment overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_MODEL = "minishlab/potion-base-8M"


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
    raw: dict[str, Any] = field(default_factory=dict)


def parse_config(raw: bytes | None) -> StoreConfig:
    data = yaml.safe_load(raw) if raw else {}
    data = data if isinstance(data, dict) else {}
    emb = data.get("embedding") or {}
    chunk = data.get("chunking") or {}
    cap = data.get("capture") or {}
    cfg = StoreConfig(
        schema=int(data.get("schema", 1)),
        embed_model=str(emb.get("model") or DEFAULT_MODEL),
        chunk_max_chars=int(chunk.get("max_chars", 1500)),
        chunk_overlap_chars=int(chunk.get("overlap_chars", 0)),
        remotes={str(k): str(v) for k, v in (data.get("remotes") or {}).items()},
        extract=bool(cap.get("extract", False)),
        redact_patterns=[str(p) for p in cap.get("redact_patterns") or []],
        raw=data,
    )
    if isinstance(data.get("retention"), dict):
        cfg.retention.update({k: int(v) for k, v in data["retention"].items()})
    if os.environ.get("ATOCORE_EMBED_MODEL"):
        cfg.embed_model = os.environ["ATOCORE_EMBED_MODEL"]
    return cfg


def load_config(store, rev: str = "main") -> StoreConfig:
    return parse_config(store.read("atocore.yaml", rev))
