"""What each page shows, computed from the same functions the HTTP API and the CLI call.

Nothing here writes. The few things no API returns as such (per-entry state history, the last
refresh of a project, plain-language backup warnings) are derived from git history and the
backup status, so the pages never keep a truth of their own.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..memories import list_memories
from ..records import STATE_CATEGORIES, Memory, ProjectState, StateEntry, parse_state, state_path
from ..store import Store

# --------------------------------------------------------------------------- projects


def state_by_category(state: ProjectState) -> list[tuple[str, list[StateEntry]]]:
    groups: dict[str, list[StateEntry]] = {}
    for e in state.entries:
        groups.setdefault(e.category, []).append(e)
    order = list(STATE_CATEGORIES) + sorted(set(groups) - set(STATE_CATEGORIES))
    return [(c, groups[c]) for c in order if c in groups]


@dataclass
class EntryEvent:
    sha: str
    time: int
    author: str
    summary: str
    value: str | None        # None: the entry was removed in that commit
    category: str | None = None


def entry_history(store: Store, project: str, limit: int = 100) -> dict[str, list[EntryEvent]]:
    """Per key, the commits on main that set, changed or removed it (newest first)."""
    from ..state import state_history

    path = state_path(project)
    commits = list(reversed(state_history(store, project, limit=limit)))  # oldest first
    out: dict[str, list[EntryEvent]] = {}
    before: dict[str, StateEntry] = {}
    for c in commits:
        raw = store.read(path, c.sha)
        try:
            now = {e.key: e for e in parse_state(raw, path).entries} if raw else {}
        except ValidationError:
            continue
        for key in list(now) + [k for k in before if k not in now]:
            o, n = before.get(key), now.get(key)
            if o is not None and n is not None and (o.category, o.value) == (n.category, n.value):
                continue
            out.setdefault(key, []).insert(0, EntryEvent(c.sha, c.time, c.author, c.summary,
                                                         None if n is None else n.value,
                                                         None if n is None else n.category))
        before = now
    return out


_COUNTS_RE = re.compile(r"^Refresh sources of project \S+: (\d+) added, (\d+) changed, (\d+) removed")


@dataclass
class LastRefresh:
    sha: str
    time: int
    author: str
    added: int
    changed: int
    removed: int
    skipped: str            # "3 binary, 1 not UTF-8 text" (from the commit message), "" if none
    message: str


def last_refresh(store: Store, project: str) -> LastRefresh | None:
    """The last refresh that changed the project's staged sources (a refresh that found nothing
    new makes no commit; the page's refresh button shows its full report)."""
    if store.head() is None:
        return None
    log = store.log("main", path=f"sources/{project}", limit=1)
    if not log:
        return None
    c = log[0]
    m = _COUNTS_RE.match(c.message)
    skipped = next((line[len("Skipped: "):] for line in c.message.splitlines() if line.startswith("Skipped: ")), "")
    a, ch, r = (int(x) for x in m.groups()) if m else (0, 0, 0)
    return LastRefresh(c.sha, c.time, c.author, a, ch, r, skipped, c.message)


# --------------------------------------------------------------------------- memories


class MemoryCache:
    """All memories at main's head, parsed once per head: the list page filters 10k records
    per request, and parsing them costs far more than filtering."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._mems: list[Memory] = []

    def all(self, store: Store, head: str | None) -> list[Memory]:
        key = (str(store.path), head)
        with self._lock:
            if self._key != key:
                self._mems = list_memories(store) if head else []
                self._key = key
            return self._mems


@dataclass
class MemoryPage:
    items: list[Memory]
    total: int
    offset: int
    limit: int
    filters: dict[str, str] = field(default_factory=dict)


def filter_memories(mems: list[Memory], type: str = "", status: str = "", project: str = "", text: str = "",
                    offset: int = 0, limit: int = 50) -> MemoryPage:
    """Newest first; ``text`` matches any word sequence case-insensitively; project ``-`` = global."""
    needle = " ".join(text.lower().split())
    out = []
    for m in reversed(mems):
        if type and m.type != type:
            continue
        if status and m.status != status:
            continue
        if project and (m.project or "-") != project:
            continue
        if needle and needle not in " ".join(m.text.lower().split()):
            continue
        out.append(m)
    return MemoryPage(out[offset:offset + limit], len(out), offset, limit,
                      {"type": type, "status": status, "project": project, "text": text})


# --------------------------------------------------------------------------- health


def _ago(seconds: float) -> str:
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes ago"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} hours ago"
    return f"{round(seconds / 86400)} days ago"


def _when(iso: str | None) -> float | None:
    if not iso:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def health_warnings(health: dict[str, Any], backups: dict[str, Any] | None, snapshots: list[Any] | None,
                    now: float | None = None) -> list[str]:
    """The health of the store in sentences a person can act on."""
    now = time.time() if now is None else now
    out: list[str] = []
    index = health.get("index") or {}
    if index.get("error") and not index.get("commit"):
        out.append(f"Search is unavailable: the index cannot be opened ({index['error']}). Assistants get only "
                   "trusted state until it is rebuilt ('atocore index rebuild').")
    elif index.get("stale"):
        out.append("The search index is behind the store; it is catching up now (new records may not be found "
                   "for a moment).")
    if index.get("degraded") and index.get("commit"):
        out.append("Search runs on keywords only: " + str(index.get("degraded_reason") or "no embedding model")
                   + ". Meaning-based matches are missing until the model is available.")
    if index.get("last_update_error"):
        out.append(f"The last index update failed: {index['last_update_error']}.")
    if backups is not None:
        remotes = backups.get("remotes") or []
        if not remotes:
            out.append("No backup remote is configured: the store exists only on this machine "
                       "(add one under 'remotes:' in atocore.yaml).")
        for r in remotes:
            name = r.get("remote")
            behind = r.get("commits_behind")
            verified = _when(r.get("last_verified"))
            if verified is None:
                out.append(f"The backup '{name}' has never been verified: push to it ('atocore backup push').")
            elif behind:
                age = now - verified
                n = f"{behind} commit{'s' if behind != 1 else ''}"
                if age >= 86400:
                    out.append(f"The {name} backup is {_ago(age).replace(' ago', '')} behind ({n} not yet pushed).")
                else:
                    out.append(f"The {name} backup is {n} behind (last verified push {_ago(age)}).")
            if r.get("last_error") and r.get("last_attempt") != r.get("last_ok"):
                out.append(f"The last push to '{name}' failed: {r['last_error']}")
        if backups.get("state_damaged"):
            out.append("The backup status file was damaged and was reset; push again to record a verified backup.")
    if snapshots is not None and not snapshots:
        out.append("There is no snapshot yet: a restore could only go back to a commit in the history.")
    return out


def ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "never"
    return _ago((time.time() if now is None else now) - ts)
