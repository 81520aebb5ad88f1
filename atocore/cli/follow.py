"""The CLI's step after its own write: bring the index to main.

Writers only write (``projects.refresh``, ``backup.restore``, ``backup.recover``, capture);
the index follows main. In the service its watcher does that; a CLI command that wrote calls
one of these, so ``atocore refresh``, ``atocore restore``, ``atocore init --from`` and
``atocore redact --history`` still leave the index at main when they return (DESIGN: "stage ...
and re-index", "indexes rebuilt").
Each function is the writer followed by the index step, with the writer's signature.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

INDEX_HINT = "run 'atocore index rebuild' (the service also re-indexes when main moves)"


def reindex(store) -> dict:
    """Update the index to main; a failure is reported in the result (the write is done)."""
    from ..retrieval import open_retriever

    t0 = time.perf_counter()
    try:
        info = open_retriever(store).update()
    except Exception as exc:  # noqa: BLE001 - the write itself is done; say the index lags
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "hint": INDEX_HINT}
    return {"ok": True, "seconds": round(time.perf_counter() - t0, 3),
            "result": info if isinstance(info, dict) else None}


def refresh(store, project_id: str | None = None, author: str | None = None, wait: float = 0.0,
            update_index: bool = True, retriever: Any = None, **kw: Any) -> list:
    """``atocore refresh``: stage the sources, then (unless ``update_index`` is off) re-index.
    Each report's ``index`` is the index update (``Retriever.update()``'s result)."""
    from ..projects.refresh import refresh as stage
    from ..retrieval import open_retriever

    reports = stage(store, project_id, author=author, wait=wait, **kw)
    if update_index:
        t0 = time.perf_counter()
        index = (retriever or open_retriever(store)).update()
        spent = time.perf_counter() - t0
        for r in reports:
            r.index = index
            r.seconds += spent
    return reports


def restore(store, rev: str, dry_run: bool = False, author: str | None = None, reindex_after: bool = True) -> dict:
    """``atocore restore REV``: the restore commit, then the index brought to it (``report["index"]``)."""
    from ..backup.restore import restore as do_restore

    report = do_restore(store, rev, dry_run=dry_run, author=author)
    if reindex_after and report.get("commit"):
        report["index"] = reindex(store)
    return report


def init_from(url: str, path, rebuild_index: bool = True, verify: bool = True):
    """``atocore init PATH --from URL``: recover the store, then rebuild its indexes (search and
    path history, so the first search and ``memory history`` are instant)."""
    from ..backup.recover import init_from as recover
    from ..retrieval import open_retriever

    store = recover(url, path, verify=verify)
    if rebuild_index:  # the clone is complete: an index failure leaves a good store to re-index
        # The two indexes are independent files under separate locks: build them side by side
        # (the search index embeds in native code, the history index reads ``git log`` from a
        # subprocess), the history one through its own store handle (dulwich's pack readers
        # are not shared between threads).
        from ..store import Store

        def history() -> None:
            t1 = time.perf_counter()
            Store(store.path).history.update()
            store.recovery["history_seconds"] = round(time.perf_counter() - t1, 3)

        with ThreadPoolExecutor(1) as pool:
            later = pool.submit(history)
            t1 = time.perf_counter()
            open_retriever(store).rebuild()
            store.recovery["index_seconds"] = round(time.perf_counter() - t1, 3)
            later.result()
        store.recovery["indexes_seconds"] = round(time.perf_counter() - t1, 3)
    return store


def purge_history(store, **kw: Any) -> dict:
    """``atocore redact --history``: purge the secret from history, then *rebuild* the index (an
    update would keep what the old index holds: the secret itself)."""
    from ..retrieval import open_retriever
    from ..backup.purge import purge_history as purge

    report = purge(store, **kw)
    if report["dry_run"] or not report["refs"]:
        return report
    try:
        info = open_retriever(store).rebuild()
        report["index"] = {"commit": info.get("commit"), "rebuilt": True}
    except Exception as exc:  # noqa: BLE001 - the purge itself is done; say what is left to do
        report["index"] = {"rebuilt": False, "error": f"{type(exc).__name__}: {exc}; run 'atocore index rebuild'"}
    return report
