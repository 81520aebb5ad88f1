"""Memories: one markdown file per memory under ``memories/``, written straight to main.

Every function here is one commit (or none). A memory is never deleted: superseding or
invalidating it flips its ``status`` so history, provenance and the old text stay readable.
"""

from __future__ import annotations

from typing import Any, Iterable

from .errors import Conflict, NotFound, ValidationError
from .ids import check_record_id, new_ulid
from .records import (MEMORY_STATUSES, MEMORY_TYPES, Memory, memory_from_dict, memory_path, now_iso,
                      parse_memory)
from .store import Store
from .store.repo import CommitInfo

MEMORY_PREFIX = "memories/"


def _excerpt(text: str, limit: int = 72) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def add_memory(store: Store, text: str, type: str, project: str | None = None, status: str = "active",
               confidence: float = 1.0, source: str = "manual", tags: Iterable[str] = (),
               author: str | None = None) -> Memory:
    """Validate and commit a new memory on main (one commit); return it with its new id."""
    now = now_iso()
    mem = memory_from_dict({"id": new_ulid(), "type": type, "text": text, "project": project, "status": status,
                            "confidence": confidence, "source": source, "created": now, "updated": now,
                            "tags": list(tags)})
    where = f" for {mem.project}" if mem.project else ""
    message = f"Add {mem.type} memory {mem.id}{where}\n\n{_excerpt(mem.text, 400)}\n\nSource: {mem.source}"
    store.commit({mem.path: mem.dump()}, message, author=author)
    return mem


def _parse_all(store: Store, rev: str) -> list[Memory]:
    out = []
    for path, sha in store.files(rev, MEMORY_PREFIX).items():
        if not path.endswith(".md"):
            continue
        try:
            out.append(parse_memory(store.read_blob(sha), path))
        except ValidationError:
            continue  # bad content that reached main by a push: reported by `status`, never served
    return out


def list_memories(store: Store, project: str | None = None, status: str | None = None, type: str | None = None,
                  rev: str = "main") -> list[Memory]:
    """Valid memories at ``rev`` (oldest first), filtered by project / status / type."""
    if status is not None and status not in MEMORY_STATUSES:
        raise ValidationError("status", f"{status!r} is not allowed", MEMORY_STATUSES)
    if type is not None and type not in MEMORY_TYPES:
        raise ValidationError("type", f"{type!r} is not allowed", MEMORY_TYPES)
    if store.head() is None and rev == "main":
        return []
    mems = [m for m in _parse_all(store, rev)
            if (project is None or m.project == project) and (status is None or m.status == status)
            and (type is None or m.type == type)]
    mems.sort(key=lambda m: (m.created, m.id))
    return mems


def get_memory(store: Store, memory_id: str, rev: str = "main") -> Memory:
    path = memory_path(check_record_id(memory_id, "memory_id"))
    raw = store.read(path, rev)
    if raw is None:
        raise NotFound(f"no memory {memory_id!r} at {rev}")
    return parse_memory(raw, path)


def memory_history(store: Store, memory_id: str, rev: str = "main", limit: int | None = None) -> list[CommitInfo]:
    """Commits that touched the memory, newest first."""
    path = memory_path(check_record_id(memory_id, "memory_id"))
    return store.log(rev, path=path, limit=limit, until_added=True)  # memories are never deleted


_SUPERSEDE_FIELDS = ("type", "project", "confidence", "source", "tags", "status")


def supersede_memory(store: Store, old_id: str, text: str, author: str | None = None, **fields: Any) -> Memory:
    """Write a new memory replacing ``old_id`` and mark the old one superseded, in one commit.

    ``fields`` may override ``type``, ``project``, ``confidence``, ``source``, ``tags`` and
    ``status`` of the new memory; by default they are copied from the old one.
    """
    unknown = sorted(set(fields) - set(_SUPERSEDE_FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "unknown field", _SUPERSEDE_FIELDS)
    with store.lock():
        old = get_memory(store, old_id)
        if old.status in ("superseded", "invalid"):
            raise Conflict(f"memory {old.id} is already {old.status}; supersede the memory that replaced it")
        now = now_iso()
        data = {"type": old.type, "project": old.project, "confidence": old.confidence, "source": old.source,
                "tags": list(old.tags), "status": "active"}
        data.update({k: v for k, v in fields.items() if v is not None or k == "project"})
        new = memory_from_dict({**data, "id": new_ulid(), "text": text, "created": now, "updated": now,
                                "supersedes": old.id})
        old.status, old.updated = "superseded", now
        message = (f"Supersede memory {old.id} with {new.id}\n\n{_excerpt(new.text, 400)}\n\n"
                   f"Replaces: {_excerpt(old.text, 200)}")
        store.commit({new.path: new.dump(), old.path: old.dump()}, message, author=author)
    return new


def invalidate_memory(store: Store, memory_id: str, reason: str, author: str | None = None) -> Memory:
    """Mark a memory invalid (kept for history, never served); the reason goes in the commit."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", "say why the memory is invalid")
    with store.lock():
        mem = get_memory(store, memory_id)
        if mem.status == "invalid":
            raise Conflict(f"memory {mem.id} is already invalid")
        mem.status, mem.updated = "invalid", now_iso()
        store.commit({mem.path: mem.dump()}, f"Invalidate memory {mem.id}\n\nReason: {reason.strip()}",
                     author=author)
    return mem


__all__ = ["add_memory", "list_memories", "get_memory", "memory_history", "supersede_memory",
           "invalidate_memory"]
