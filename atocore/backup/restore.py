"""Restore: put main back to the content of an earlier revision as a *new* commit.

History is kept (the restore is one more commit whose tree equals REV's tree) and the state
before the restore is tagged as a ``backup/...`` safety snapshot first. A writer only: the index
follows main afterwards (the service's watcher, or the CLI's step after its own write,
:mod:`atocore.cli.follow`).
"""

from __future__ import annotations

from ..errors import Busy
from ..store.repo import BACKUP_TAG_PREFIX, MAIN
from .service_lock import service_running
from ..store.snapshots import snapshot


def _changes(store, old: str | None, new: str) -> dict:
    added, changed, removed = [], [], []
    for ch in store.diff(old, new):
        if ch.old is None:
            added.append(ch.path)
        elif ch.new is None:
            removed.append(ch.path)
        else:
            changed.append(ch.path)
    return {"added": sorted(added), "changed": sorted(changed), "removed": sorted(removed)}


def check_no_service(store) -> None:
    svc = service_running(store)
    if svc and not svc.get("self"):
        raise Busy(f"the AtoCore service (pid {svc.get('pid', '?')}) is serving this store and may be writing; "
                   "restore through it (POST /admin/restore) or stop it first")


def _known_to_main(store, target: str, head: str | None) -> bool:
    """Was ``target`` ever main's content: an ancestor of main or of a backup/ snapshot tag?"""
    from dulwich.graph import can_fast_forward

    tips = [head] if head else []
    tips += list(store.refs(BACKUP_TAG_PREFIX).values())
    for tip in tips:
        try:
            tip_commit = store.resolve(tip)
            if tip_commit == target or can_fast_forward(store.repo, target.encode(), tip_commit.encode()):
                return True
        except Exception:  # noqa: BLE001 - a tag on a non-commit: not a way in
            continue
    return False


def _gate(store, rev: str, target: str, head: str | None, target_tree: str) -> None:
    """A restore reaches main like everything else: through the gate. Only content main had
    (its history or a backup/ tag) may come back, and it must still pass the gate's layout,
    mode, size and schema rules (secrets are not re-scanned: that content was on main already)."""
    from ..errors import ValidationError
    from ..gate import check_tree_change

    if not _known_to_main(store, target, head):
        raise ValidationError("rev", f"{rev!r} ({target[:12]}) was never on main (not in main's history nor in a "
                              "backup/ snapshot); restore only goes back to content main had. To bring other "
                              "content in, propose it for review")
    problems = check_tree_change(store, store.tree_id(head) if head else None, target_tree)
    if problems:
        raise ValidationError("rev", f"restoring {rev!r} is refused by the gate: " + "; ".join(problems[:20]))


def restore(store, rev: str, dry_run: bool = False, author: str | None = None) -> dict:
    """``atocore restore REV`` / ``POST /admin/restore``. Returns a report dict."""
    if not dry_run:
        check_no_service(store)
    with store.lock():
        # Resolved under the lock: "main~1" means the parent of the main this restore replaces.
        target = store.resolve(rev)
        target_tree = store.tree_id(target)
        head = store.head(MAIN)
        report: dict = {"rev": rev, "target": target, "dry_run": dry_run, "ok": True, "before": head}
        report.update(_changes(store, head, target))
        same = head is not None and store.tree_id(head) == target_tree
        report["nothing_to_do"] = same
        if dry_run or same:
            report["commit"] = None
            report["after"] = head
            return report
        _gate(store, rev, target, head, target_tree)
        tag = snapshot(store, f"pre-restore: main before restoring {rev} ({target[:12]})")
        n = len(report["added"]) + len(report["changed"]) + len(report["removed"])
        message = (f"Restore main to {rev} ({target[:12]})\n\n"
                   f"Main now has the content of {target}.\n"
                   f"Previous main: {head}; safety snapshot: {tag}.\n"
                   f"{n} paths: {len(report['added'])} added, {len(report['changed'])} changed, "
                   f"{len(report['removed'])} removed.")
        sha = store.commit({}, message, author=author, base_tree=target_tree, allow_empty=True)
        report.update(commit=sha, after=sha, snapshot=tag)
    return report
