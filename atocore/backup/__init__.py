"""Backup by git push, verified restore, snapshots and recovery from a clone.

    push(store, remote=None) -> report          # POST /admin/backup, `atocore backup push`
    status(store) -> dict                       # `atocore backup status`
    restore(store, rev, dry_run=False, author=None) -> report   # POST /admin/restore, `atocore restore`
    snapshot(store, reason) -> tag              # atocore.store.snapshots; before each refresh
    list_snapshots(store), prune_snapshots(store)
    drill(store) -> report                      # `atocore drill`
    init_from(url, path) -> Store               # `atocore init PATH --from URL`
    hold_service_lock(store), service_running(store)   # see service_lock.py

restore and init_from only write: the index follows main (the service's watcher, or the CLI's
step after its own write in atocore/cli/follow.py).
"""

from ..store.snapshots import list_snapshots, prune_snapshots, snapshot
from .push import Diverged, VerifyFailed, push, verify_remote
from .recover import init_from
from .restore import restore
from .service_lock import hold_service_lock, service_running
from .status import status


def drill(store, **kwargs):
    from .drill import drill as _drill

    return _drill(store, **kwargs)


__all__ = ["Diverged", "VerifyFailed", "push", "verify_remote", "init_from", "restore", "hold_service_lock",
           "service_running", "list_snapshots", "prune_snapshots", "snapshot", "status", "drill"]
