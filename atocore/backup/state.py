"""Per-remote backup state: ``<store>/atocore-backup.json`` (beside the objects, never tracked)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

STATE_FILE = "atocore-backup.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _path(store) -> Path:
    return Path(store.path) / STATE_FILE


def load_state(store) -> dict:
    try:
        data = json.loads(_path(store).read_text())
    except FileNotFoundError:
        return {"version": 1, "remotes": {}}
    except (OSError, ValueError):
        # A damaged state file only loses the status history; the next push rewrites it.
        return {"version": 1, "remotes": {}, "damaged": True}
    if not isinstance(data, dict) or not isinstance(data.get("remotes"), dict):
        return {"version": 1, "remotes": {}, "damaged": True}
    return data


def save_state(store, data: dict) -> None:
    path = _path(store)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one


def update_remote_state(store, key: str, **fields) -> dict:
    # Its own small lock: a failed push may not hold the store's writer lock (e.g. it timed out).
    from ..store.lock import file_lock

    with file_lock(_path(store).with_name(STATE_FILE + ".lock"), timeout=30, what="the backup state file"):
        data = load_state(store)
        data.pop("damaged", None)
        entry = data["remotes"].setdefault(key, {})
        entry.update(fields)
        save_state(store, data)
        return entry
