"""Trusted project state (``state/<project>.yaml``): changed only through review."""

from __future__ import annotations

from .errors import NotFound, ValidationError
from .ids import check_slug
from .records import ProjectState, now_iso, parse_state, state_entry_from_dict, state_path
from .review import Proposal, propose
from .store import Store
from .store.repo import CommitInfo


def get_state(store: Store, project: str, rev: str = "main") -> ProjectState:
    """The project's trusted state at ``rev`` (empty if it has none)."""
    path = state_path(project)
    raw = store.read(path, rev) if store.head() is not None or rev != "main" else None
    return ProjectState(project=project) if raw is None else parse_state(raw, path)


def list_state_projects(store: Store, rev: str = "main") -> list[str]:
    """Projects that have a trusted-state file at ``rev``."""
    return sorted(p[len("state/"):-len(".yaml")] for p in store.files(rev, "state") if p.endswith(".yaml"))


def state_history(store: Store, project: str, rev: str = "main", limit: int | None = None) -> list[CommitInfo]:
    return store.log(rev, path=state_path(project), limit=limit)


def propose_state(store: Store, project: str, key: str, value: str, category: str = "fact", source: str = "manual",
                  approve: bool = False, author: str | None = None, reviewer: str | None = None) -> Proposal:
    """Propose setting one trusted-state entry (a ``review/<id>`` branch); ``approve`` merges it at once."""
    check_slug(project, "project")
    entry = state_entry_from_dict({"category": category, "key": key, "value": value, "source": source,
                                   "updated": now_iso()})
    with store.lock():
        state = get_state(store, project)
        old = state.get(entry.key)
        if old is not None and (old.category, old.value, old.source) == (entry.category, entry.value, entry.source):
            raise ValidationError("value", f"{project} {entry.key} already has exactly this value; nothing to propose")
        state.upsert(entry)
        verb = "Change" if old is not None else "Set"
        body = f"{entry.category} {entry.key} = {entry.value}"
        if old is not None:
            body += f"\n\nWas: {old.category} {old.key} = {old.value}"
        return propose(store, {state.path: state.dump()}, f"{verb} {project} state {entry.key}", body=body,
                       kind="state", author=author, approve=approve, reviewer=reviewer)


def propose_state_removal(store: Store, project: str, key: str, reason: str = "", approve: bool = False,
                          author: str | None = None, reviewer: str | None = None) -> Proposal:
    """Propose removing one trusted-state entry."""
    with store.lock():
        state = get_state(store, project)
        if state.get(key) is None:
            raise NotFound(f"{project} has no trusted state entry {key!r}")
        state.entries = [e for e in state.entries if e.key != key]
        return propose(store, {state.path: state.dump()}, f"Remove {project} state {key}", body=reason,
                       kind="state", author=author, approve=approve, reviewer=reviewer)


__all__ = ["get_state", "list_state_projects", "state_history", "propose_state", "propose_state_removal"]
