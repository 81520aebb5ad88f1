"""The running service's state: the store, the retriever, and the watcher that keeps the index on main.

Main can move under the service at any time (a push from a clone, a restore, a pull, a CLI
write). A watcher thread reads the ref every ``watch_interval`` seconds (one small file read; the
hot path uses the value it read, so a request makes no file system call for it)
and, when main differs from the indexed commit, brings the index forward with
``Retriever.update()`` in that thread, so requests are never blocked: they keep being served
from the previous index until the update lands. Writes made through the service wake the
watcher at once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..api import Api
from ..store import Store, open_store
from ..store.head import read_main_head, watch_main_head

log = logging.getLogger("atocore.server")

LAST_BUILD_INTERVAL = 0.25  # seconds between two writes of the last build (atocore debug-context)
AFTER_START_IDLE = 1.0  # start-up extras wait for this long without a context request


def _freeze(collect: bool = True) -> None:
    import gc

    if collect:  # a full collection once at start-up; later freezes skip it (it would stall requests)
        gc.collect()
    gc.freeze()


class Service:
    def __init__(self, store_path: str, token: str | None = None, watch_interval: float = 0.2,
                 retriever: Any = None, hold_lock: bool = True, store: Store | None = None):
        self.store: Store = store if store is not None else open_store(store_path)
        self.token = token or None
        self.watch_interval = watch_interval
        self.started = time.time()
        self._retriever = retriever
        self._retriever_error: str | None = None
        self._retriever_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_update: dict[str, Any] | None = None
        self.last_update_error: str | None = None
        self.last_update_at: float | None = None
        self.updates = 0
        self.last_build: dict[str, Any] | None = None
        self.head: str | None = None
        self.index_ready = True  # False while a missing index is first built (requests then skip search)
        self._build_dirty = threading.Event()
        self._writer: threading.Thread | None = None
        self.service_lock = None
        self._hold_lock = hold_lock
        self._config_check: tuple[str | None, str | None] | None = None
        self._patterns: tuple[str, tuple[str, ...]] | None = None  # (atocore.yaml blob, redaction patterns)
        # the query layer over this service: its retriever, its readiness, its kept builds, its token
        self.api = Api(self.store, self.retriever_or_none, index_ready=lambda: self.index_ready,
                       keep_build=self.remember_build, token=self.token)
        self._after_start: list[Any] | None = []  # run once the watcher's first pass is done (None: ran)
        self._last_request = time.monotonic()  # of the last context build served (or of the start)
        self._indexed = threading.Condition()  # notified each time the watcher has handled a head
        self._indexed_head: str | None = None
        self._failed_head: str | None = None

    # ------------------------------------------------------------------ retriever

    @property
    def retriever(self) -> Any:
        if self._retriever is None:
            with self._retriever_lock:
                if self._retriever is None:
                    from ..retrieval import open_retriever

                    try:
                        self._retriever = open_retriever(self.store)
                    except Exception as exc:  # keep serving state and writes; /health says why
                        self._retriever_error = f"{type(exc).__name__}: {exc}"
                        log.exception("cannot open the index")
                        raise
        return self._retriever

    def retriever_or_none(self) -> Any:
        try:
            return self.retriever
        except Exception:
            return None

    def ready_retriever(self) -> Any:
        """The retriever if its index can answer now (not while a first build is running)."""
        return self.retriever_or_none() if self.index_ready else None

    # ------------------------------------------------------------------ main's head, watched

    def refresh_head(self) -> str | None:
        self.head = read_main_head(self.store)
        return self.head

    def start(self) -> None:
        self._last_request = time.monotonic()  # start-up extras wait for a quiet second from here
        if self._hold_lock:
            from ..backup.service_lock import hold_service_lock

            self.service_lock = hold_service_lock(self.store)
        self.refresh_head()
        watch_main_head(self.store, lambda: self.head)  # readers of main_head get the watched value
        self.warm()
        self.after_start(self._calibrate)
        self._thread = threading.Thread(target=self._watch, name="atocore-index-watcher", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_builds, name="atocore-last-build", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        watch_main_head(self.store, None)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._build_dirty.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        self._flush_build()
        if self.service_lock is not None:
            self.service_lock.release()
            self.service_lock = None

    def redact_patterns(self) -> tuple[str, ...]:
        """The store's extra redaction patterns (none if the config cannot be read), read once per
        version of atocore.yaml on main (the last-build writer asks up to 20 times a second)."""
        from ..context.build import _extra_patterns

        try:
            blob = self.store.blob_id("atocore.yaml", self.head) if self.head else None
        except Exception:  # noqa: BLE001
            blob = None
        cached = self._patterns
        if blob is None or cached is None or cached[0] != blob:
            cached = (blob, _extra_patterns(self.store))
            if blob is not None:
                self._patterns = cached
        return cached[1]

    def poke(self) -> None:
        """Main moved through this service: see it at once, and update the index now."""
        self.refresh_head()
        self._wake.set()

    def indexed_commit(self) -> str | None:
        r = self.retriever_or_none()
        if r is None:
            return None
        try:
            return r.status().get("commit")
        except Exception:
            return None

    def warm(self) -> None:
        """Open the index and load the model before the first request, then take what is loaded out
        of the garbage collector's sight: the index keeps ~10^5 long-lived objects, and a full
        collection walking them mid-request is a 10+ ms stall (the p99 of the context path)."""
        r = self.retriever_or_none()
        if r is not None:
            try:
                # Opening only: a missing index is built by the watcher, never inside a request.
                self.index_ready = r.status().get("commit") is not None
                if self.index_ready:
                    r.search("warm up", k=1)
            except Exception:
                log.exception("warming the index failed")
        _freeze(collect=False)  # a full collection here found nothing to free and cost 0.07-0.25 s of the start

    def _calibrate(self) -> None:
        """The index's stay-empty line (retrieval/calibration.py), made in a quiet moment after the
        start rather than by the first prompt that needs it (1-3 s of the GIL; then kept on disk)."""
        r = self.retriever_or_none()
        if r is not None:
            r.calibrate(wait=True)

    def after_start(self, fn) -> None:
        """Run ``fn()`` in a background thread once the service has started, the watcher's first
        pass is done (the index and the history at main) and no context request came for
        ``AFTER_START_IDLE`` seconds: warm-ups of other caches (the /ui pages' memory and review
        lists, ~1.3 s of the GIL a year in) would otherwise compete with the start or with the
        first prompts for the interpreter."""
        with self._indexed:
            if self._after_start is not None:
                self._after_start.append(fn)
                return
        threading.Thread(target=fn, name="atocore-after-start", daemon=True).start()

    def _run_after_start(self) -> None:
        with self._indexed:
            todo, self._after_start = self._after_start, None
        if not todo:
            return

        def run() -> None:
            while not self._stop.is_set():
                quiet = time.monotonic() - self._last_request
                if quiet >= AFTER_START_IDLE:
                    break
                self._stop.wait(AFTER_START_IDLE - quiet)
            for fn in todo:
                try:
                    fn()
                except Exception:  # a warm-up is only a head start
                    log.exception("start-up task failed")

        threading.Thread(target=run, name="atocore-after-start", daemon=True).start()

    def _watch(self) -> None:
        seen: str | None = "<none>"
        while not self._stop.is_set():
            try:
                head = self.refresh_head()  # one small ref read; requests use this value
                if head != seen:
                    r = self.retriever_or_none()
                    if r is not None:
                        self.last_update = r.update()  # a no-op when the index is already at main
                        self.index_ready = True
                        self.last_update_at = time.time()
                        self.updates += 1
                        self.last_update_error = None
                        if (self.last_update or {}).get("action") == "rebuild":
                            _freeze(collect=False)  # a rebuilt index is long-lived too
                    self._update_history(head)
                    seen = head
                    with self._indexed:  # follow_main() waits on this
                        self._indexed_head = head
                        self._indexed.notify_all()
                    if self._after_start is not None:
                        self._run_after_start()
            except Exception as exc:  # never let the watcher die; report on /health and retry
                self.last_update_error = f"{type(exc).__name__}: {exc}"
                log.exception("index update failed")
                with self._indexed:  # a follow_main() waiting for this head: it failed (see /health)
                    self._failed_head = self.head
                    self._indexed.notify_all()
                if self._after_start is not None:
                    self._run_after_start()
                self._stop.wait(2.0)
            self._wake.wait(self.watch_interval)
            self._wake.clear()

    def _update_history(self, head: str | None) -> None:
        """Keep the path history index at main too, so history requests never catch up."""
        try:
            self.store.history.update(head)
        except Exception:  # derived data: history falls back to walking; retried on the next move
            log.exception("history index update failed")

    # ------------------------------------------------------------------ last context build

    def remember_build(self, data: dict[str, Any]) -> None:
        """Keep the build as served; a writer thread persists it for `atocore debug-context`
        (off the request path: the file write would cost more than the rest of the response), at
        once after a quiet moment, at most every ``LAST_BUILD_INTERVAL`` under load."""
        self.last_build = data
        self._last_request = time.monotonic()
        if self._writer is None:
            self._flush_build(data)
        else:
            self._build_dirty.set()

    def _flush_build(self, data: dict[str, Any] | None = None) -> None:
        from ..context.build import save_last_build

        data = data if data is not None else self.last_build
        if data is not None:
            try:
                save_last_build(self.store, data, self.redact_patterns())
            except OSError:
                log.exception("cannot save the last context build")

    def _write_builds(self) -> None:
        while not self._stop.is_set():
            self._build_dirty.wait()
            self._build_dirty.clear()
            self._flush_build()
            # at most 4 writes a second under load: each costs ~0.8 ms of the GIL (redaction, JSON,
            # the file), which a request waits out; a build after a quiet moment is written at once
            self._stop.wait(LAST_BUILD_INTERVAL)

    def follow_main(self, timeout: float = 120.0) -> dict[str, Any] | None:
        """After a write through the service that the caller wants searchable at once (a refresh):
        wake the watcher and wait until it has brought the index to main. Returns the watcher's
        last update, or None when there is no index (or it did not catch up in ``timeout``)."""
        if self.retriever_or_none() is None:
            return None
        head = self.refresh_head()
        if self._thread is None or not self._thread.is_alive():
            return None  # no watcher (not started): the index catches up when one runs
        with self._indexed:
            self._wake.set()
            self._indexed.wait_for(lambda: head in (self._indexed_head, self._failed_head) or self._stop.is_set(),
                                   timeout)
        return self.last_update if self._indexed_head == head else None

    # ------------------------------------------------------------------ health

    def config_problem(self) -> str | None:
        """What is wrong with atocore.yaml on main (None when valid); parsed once per version."""
        from ..config import config_problem

        try:
            blob = self.store.blob_id("atocore.yaml")
        except Exception:  # noqa: BLE001
            blob = None
        cached = self._config_check
        if cached is None or cached[0] != blob:
            cached = self._config_check = (blob, config_problem(self.store))
        return cached[1]

    def health(self) -> dict[str, Any]:
        from ..store import REVIEW_PREFIX
        from .buildinfo import build_info

        head = self.store.head()
        index: dict[str, Any]
        r = self.retriever_or_none()
        degraded_reasons: list[str] = []
        if r is None:
            index = {"commit": None, "stale": True, "degraded": True, "error": self._retriever_error}
            degraded_reasons.append("index unavailable")
        else:
            try:
                index = dict(r.status())
            except Exception as exc:
                index = {"commit": None, "error": f"{type(exc).__name__}: {exc}", "degraded": True}
            index.setdefault("commit", None)
            index["stale"] = index.get("commit") != head
            index.setdefault("degraded", False)
            if index.get("degraded"):
                degraded_reasons.append("index degraded (" + str(index.get("degraded_reason")
                                                               or "no embedding model: BM25 only") + ")")
        if self.last_update_error:
            degraded_reasons.append("last index update failed")
        config_problem = self.config_problem()
        if config_problem:
            degraded_reasons.append(f"invalid configuration: {config_problem}")
        index["last_update_error"] = self.last_update_error
        index["updates"] = self.updates
        try:
            reviews = len(self.store.refs(REVIEW_PREFIX))
        except Exception:
            reviews = None
        return {
            "status": "degraded" if degraded_reasons else "ok",
            **build_info(),
            "store": {"head": head, "path": str(self.store.path), "open_reviews": reviews},
            "config": {"ok": config_problem is None, "problem": config_problem},
            "index": index,
            # which embedding model serves searches, or why none does (BM25 alone)
            "model": index.get("embedding") or {"serving": "none: degraded, index unavailable"},
            "service": {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                        "uptime_s": round(time.time() - self.started, 1),
                        "writes_need_token": self.token is not None, "watch_interval_s": self.watch_interval},
            "problems": degraded_reasons,
        }
