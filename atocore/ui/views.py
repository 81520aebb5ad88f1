"""What each page shows, computed from the same functions the HTTP API and the CLI call.

Nothing here writes. The few things no API returns as such (per-entry state history, the last
refresh of a project, plain-language backup warnings) are derived from git history and the
backup status, so the pages never keep a truth of their own.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..memories import MEMORY_PREFIX, list_memories
from ..records import STATE_CATEGORIES, Memory, ProjectState, StateEntry, parse_memory, parse_state, state_path
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


_parsed_states: "OrderedDict[str, dict[str, StateEntry]]" = OrderedDict()
_parsed_lock = threading.Lock()


def _state_entries(store: Store, path: str, rev: str) -> dict[str, StateEntry] | None:
    """The entries of a state file at ``rev``, parsed once per blob (YAML is the slow part)."""
    sha = store.blob_id(path, rev)
    if sha is None:
        return {}
    with _parsed_lock:
        hit = _parsed_states.get(sha)
    if hit is None:
        try:
            hit = {e.key: e for e in parse_state(store.read_blob(sha), path).entries}
        except ValidationError:
            return None
        with _parsed_lock:
            _parsed_states[sha] = hit
            while len(_parsed_states) > 4096:
                _parsed_states.popitem(last=False)
    return hit


_histories: "OrderedDict[tuple, dict[str, list[EntryEvent]]]" = OrderedDict()


def entry_history(store: Store, project: str, limit: int = 100) -> dict[str, list[EntryEvent]]:
    """Per key, the commits on main that set, changed or removed it (newest first); kept per
    main head (the walk over main's history is the costly part of the project page)."""
    key = (str(store.path), project, store.head(), limit)
    with _parsed_lock:
        hit = _histories.get(key)
    if hit is None:
        hit = _entry_history(store, project, limit)
        with _parsed_lock:
            _histories[key] = hit
            while len(_histories) > 64:
                _histories.popitem(last=False)
    return hit


def _entry_history(store: Store, project: str, limit: int) -> dict[str, list[EntryEvent]]:
    from ..state import state_history

    path = state_path(project)
    commits = list(reversed(state_history(store, project, limit=limit)))  # oldest first
    out: dict[str, list[EntryEvent]] = {}
    before: dict[str, StateEntry] = {}
    for c in commits:
        now = _state_entries(store, path, c.sha)
        if now is None:
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


class ReviewQueue:
    """The open proposals, recomputed only when main or a ``review/*`` ref moves (reading the
    refs is cheap; recomputing 100 proposals' merge bases is not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._items: list[Any] = []

    def get(self, store: Store) -> list[Any]:
        from ..review import list_reviews
        from ..store import REVIEW_PREFIX

        key = (str(store.path), store.head(), tuple(sorted(store.refs(REVIEW_PREFIX).items())))
        with self._lock:  # one computation at a time: a second caller waits for it, not redoes it
            if self._key != key:
                self._items, self._key = list_reviews(store), key
            return self._items


def pending_registrations(store: Store, reviews: list[Any]) -> list[dict[str, Any]]:
    """Registrations waiting in review, as ``list_projects(include_pending=True)`` lists them."""
    from ..projects.registry import PROJECTS_PREFIX
    from ..records import parse_project

    out = []
    for r in reviews:
        for path in r.paths:
            if path.startswith(PROJECTS_PREFIX) and path.endswith(".yaml") and r.files.get(path):
                try:
                    proj = parse_project(r.files[path], path)
                except ValidationError:
                    continue
                out.append({**proj.to_dict(), "status": "proposed", "review": r.id})
    return sorted(out, key=lambda d: (d["id"], d["review"]))


# --------------------------------------------------------------------------- memories


class MemoryCache:
    """All memories at main's head. Parsing 10k memory files costs seconds, so they are parsed
    once, then brought forward commit to commit by the tree diff (only changed files re-read)."""

    INCREMENTAL_MAX = 2000  # more changed memory files than this: parse everything again

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._by_path: dict[str, Memory] = {}
        self._sorted: list[Memory] = []

    def all(self, store: Store, head: str | None) -> list[Memory]:
        key = (str(store.path), head)
        with self._lock:
            if self._key == key:
                return self._sorted
            old = self._key
            by_path = None
            if head is not None and old is not None and old[0] == key[0] and old[1] is not None:
                by_path = self._forward(store, old[1], head)
            if by_path is None:
                by_path = {m.path: m for m in list_memories(store, rev=head)} if head else {}
            self._key, self._by_path = key, by_path
            self._sorted = sorted(by_path.values(), key=lambda m: (m.created, m.id))
            return self._sorted

    def _forward(self, store: Store, old: str, head: str) -> dict[str, Memory] | None:
        changes = [c for c in store.diff(old, head) if c.path.startswith(MEMORY_PREFIX)]
        if len(changes) > self.INCREMENTAL_MAX:
            return None
        by_path = dict(self._by_path)
        for c in changes:
            by_path.pop(c.path, None)
            if c.new is not None and c.path.endswith(".md"):
                try:
                    by_path[c.path] = parse_memory(store.read_blob(c.new), c.path)
                except ValidationError:
                    pass  # as list_memories: bad content is never listed
        return by_path


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
