"""``atocore backup status``: per remote, the last verified push, how far behind, last error."""

from __future__ import annotations

from ..store.repo import MAIN
from .remotes import configured_remotes
from .state import load_state


def commits_behind(store, verified_main: str | None) -> int | None:
    """Commits on local main that the remote did not have at its last verified push."""
    head = store.head(MAIN)
    if head is None:
        return 0
    exclude = []
    if verified_main:
        if verified_main.encode() not in store.repo.object_store:
            return None
        exclude = [verified_main.encode()]
    return sum(1 for _ in store.repo.get_walker(include=[head.encode()], exclude=exclude))


def status(store) -> dict:
    data = load_state(store)
    entries = dict(data.get("remotes") or {})
    configured = configured_remotes(store)
    out = []
    for name in list(configured) + sorted(set(entries) - set(configured)):
        e = entries.get(name, {})
        out.append({
            "remote": name,
            "url": configured[name].url if name in configured else e.get("url"),
            "configured": name in configured,
            "last_verified": e.get("last_verified"),
            "last_deep_verified": e.get("last_deep_verified"),
            "verified_main": e.get("verified_main"),
            "commits_behind": commits_behind(store, e.get("verified_main")),
            "last_attempt": e.get("last_attempt"),
            "last_ok": e.get("last_ok"),
            "last_error": e.get("last_error"),
        })
    return {"head": store.head(MAIN), "remotes": out, "state_damaged": bool(data.get("damaged"))}
