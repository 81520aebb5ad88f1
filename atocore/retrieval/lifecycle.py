"""Keeping an index generation at main: adopt what is on disk, plan, update in place or rebuild.

``IndexLifecycle`` is the half of the Retriever (retriever.py) that owns the derived index:
which generation is current, whether main moved, an incremental update under the write lock, a
full rebuild on the side (the work of it in indexing.py) swapped in when done, and the status
``/health`` reports. Searches (retriever.py) read the current generation under a shared lock.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import load_config
from ..errors import Busy
from ..store.head import main_head
from ..store.lock import file_lock
from .chunking import Chunk
from .embedder import Embedder, load_embedder
from .index import COMPACT_DELTAS, SCHEMA_VERSION, CorruptIndex, Generation, remove_folder
from .indexing import _chunking, _file_chunks, _release_memory, build_into

INCREMENTAL_MAX_FILES = 2000  # larger diffs rebuild on the side instead of editing in place
COMPACT_DEAD_RATIO = 0.25  # rebuild once deleted chunks exceed this share of live ones (+ the minimum)
COMPACT_DEAD_MIN = 16


@dataclass
class _Plan:
    action: str  # none | incremental | rebuild
    reason: str
    head: str | None
    changes: list = field(default_factory=list)


class IndexLifecycle:
    def __init__(self, store, model: str | None = None, progress: bool | None = None):
        self.store = store
        self.index_dir: Path = Path(store.index_dir)
        self._model_override = model
        self._progress = progress
        self._update_lock = threading.Lock()
        self._gen: Generation | None = None
        self._gen_name: str | None = None
        self._building = False
        self._last_error: str | None = None
        self._last_update: dict = {}
        self._bg: threading.Thread | None = None
        self._embedder: Embedder | None = None
        self._embedder_name: str | None = None
        self._degraded_reason: str | None = None
        self._opened = False
        self._cfg_cache: tuple | None = None
        self._size_cache: tuple | None = None
        self._seen_stamp: tuple | None = None

    def _config(self, rev: str | None):
        """The store config at ``rev`` (parsed once per version of atocore.yaml)."""
        if not rev:
            return None
        blob = self.store.blob_id("atocore.yaml", rev)
        cached = self._cfg_cache
        if cached is None or cached[0] != blob or cached[2] != os.environ.get("ATOCORE_EMBED_MODEL"):
            cached = self._cfg_cache = (blob, load_config(self.store, rev), os.environ.get("ATOCORE_EMBED_MODEL"))
        return cached[1]

    def _model_name(self, cfg) -> str:
        if self._model_override:
            return self._model_override
        if cfg is None:
            from ..config import parse_config

            cfg = parse_config(None)
        return cfg.embed_model

    def _get_embedder(self, name: str) -> Embedder | None:
        if self._embedder_name != name:
            self._embedder, self._degraded_reason = load_embedder(name)
            self._embedder_name = name
        return self._embedder

    def _current_name(self) -> str | None:
        try:
            return (self.index_dir / "CURRENT").read_text().strip() or None
        except OSError:
            return None

    def _current_stamp(self) -> tuple | None:
        try:
            st = os.stat(self.index_dir / "CURRENT")
            return (st.st_mtime_ns, st.st_ino)
        except OSError:
            return None

    def _sync_from_disk(self) -> None:
        """Adopt what another process (or an earlier run) left in the index folder."""
        self._seen_stamp = self._current_stamp()
        name = self._current_name()
        if name and name == self._gen_name and self._gen is not None:
            try:
                import json

                disk = json.loads((self.index_dir / name / "meta.json").read_text())
            except (OSError, ValueError):
                disk = None
            if disk and disk.get("version") == self._gen.meta.get("version") and not disk.get("dirty"):
                return
        gen = None
        if name:
            try:
                gen = Generation.open(self.index_dir / name)
            except CorruptIndex as exc:
                self._last_error = f"index {name} is unusable ({exc}); rebuilding"
        self._swap_in(gen, name if gen else None)

    def _swap_in(self, gen: Generation | None, name: str | None) -> None:
        self._gen, self._gen_name = gen, name  # searches pick the new one up on their next call

    def _plan(self, gen: Generation | None, force: bool = False) -> _Plan:
        head = self.store.head()
        cfg = self._config(head)
        emb = self._get_embedder(self._model_name(cfg))
        model_id = emb.model_id if emb else None
        chunking = list(_chunking(cfg))
        if force:
            return _Plan("rebuild", "requested", head)
        if gen is None:
            return _Plan("rebuild", self._last_error or "no index yet", head)
        m = gen.meta
        if m.get("schema") != SCHEMA_VERSION:
            return _Plan("rebuild", f"index schema {m.get('schema')} != {SCHEMA_VERSION}", head)
        if m.get("model") != model_id and not (emb is None and m.get("model")):
            return _Plan("rebuild", f"embedding model changed ({m.get('model')} -> {model_id})", head)
        # (a process that cannot load the model keeps an index that has vectors: it updates
        # BM25 and leaves new chunks unembedded for a process that has the model)
        if m.get("chunking") != chunking:
            return _Plan("rebuild", "chunking settings changed", head)
        if m.get("commit") == head:
            if emb is not None and gen.vectors is not None and gen.unembedded_count():
                return _Plan("incremental", "embedding chunks added while the model was unavailable", head)
            return _Plan("none", "up to date", head)
        try:
            changes = self.store.diff(m.get("commit"), head)
        except Exception as exc:
            return _Plan("rebuild", f"cannot diff from the indexed commit ({exc})", head)
        if len(changes) > INCREMENTAL_MAX_FILES:
            return _Plan("rebuild", f"{len(changes)} files changed", head)
        dead, live = int(m.get("dead", 0)), len(gen.keymap)
        if dead > COMPACT_DEAD_RATIO * live + COMPACT_DEAD_MIN:
            # deleted chunks linger in tantivy's term statistics and usearch's graph until a merge;
            # rebuilding on the side bounds how far scores drift from a fresh index
            return _Plan("rebuild", f"compaction: {dead} deleted chunks linger beside {live} live ones", head)
        return _Plan("incremental", f"{len(changes)} files changed", head, changes)

    def update(self, force: bool = False, background: bool = False) -> dict:
        """Bring the index to main; returns what was done. Thread-safe."""
        if background:
            with self._update_lock:
                if self._bg is not None and self._bg.is_alive():
                    return {"action": "running", "reason": "an update is already running"}
                self._bg = threading.Thread(target=self.update, kwargs={"force": force}, daemon=True,
                                            name="atocore-index-update")
                self._bg.start()
            return {"action": "started", "reason": "updating in the background"}
        with self._update_lock:
            return self._update_locked(force)

    def rebuild(self) -> dict:
        return self.update(force=True)

    def _update_locked(self, force: bool, background_rebuild: bool = False, lock_timeout: float = 600) -> dict:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with file_lock(self.index_dir / "update.lock", timeout=lock_timeout, what="the index"):
            self._sync_from_disk()
            self._opened = True
            plan = self._plan(self._gen, force)
            if plan.action == "rebuild" and background_rebuild and self._gen is not None:
                # a slow rebuild: keep answering from the current index, rebuild on the side
                self._bg = threading.Thread(target=self.update, daemon=True, name="atocore-index-rebuild")
                self._bg.start()
                return {"action": "started", "reason": plan.reason}
            if plan.action == "incremental":
                try:
                    info = self._incremental(self._gen, plan)
                except CorruptIndex as exc:
                    plan = _Plan("rebuild", f"index unusable during update ({exc})", plan.head)
            if plan.action == "rebuild":
                info = self._rebuild(plan)
            elif plan.action == "none":
                info = {}
        out = {"action": plan.action, "reason": plan.reason, "commit": plan.head,
               "seconds": round(time.perf_counter() - t0, 4), **info}
        self._last_update = out
        return out

    def _fresh(self) -> Generation | None:
        """The generation to search, updated to main first when that is quick."""
        if not self._opened:
            self._fresh_open_only()
        gen = self._gen
        head = main_head(self.store)  # in the service, the head its watcher read: no file access per search
        # (a rebuild by another process, e.g. `atocore index rebuild`, replaces CURRENT)
        if gen is not None and gen.meta.get("commit") == head and self._current_stamp() == self._seen_stamp:
            return gen
        if self._update_lock.acquire(blocking=gen is None):
            try:
                gen = self._gen
                if gen is None or gen.meta.get("commit") != head or self._current_stamp() != self._seen_stamp:
                    # with an index to answer from, never wait for another process's update
                    self._update_locked(False, background_rebuild=True, lock_timeout=600 if gen is None else 0)
            except Busy:
                pass
            finally:
                self._update_lock.release()
        return self._gen

    def status(self) -> dict:
        gen = self._gen
        if not self._opened:
            self._fresh_open_only()
            gen = self._gen
        head = self.store.head()
        name = self._model_name(self._config(head))
        emb = self._get_embedder(name)
        meta = gen.meta if gen else {}
        degraded = emb is None or gen is None or gen.vectors is None or meta.get("model") != emb.model_id
        unembedded = _read(gen, gen.unembedded_count) if gen is not None and gen.vectors is not None else 0
        reason = self._degraded_reason if emb is None else (
            None if not degraded else "no index yet" if gen is None else "index built for another model; rebuild pending")
        return {
            "commit": meta.get("commit"), "head": head, "stale": meta.get("commit") != head,
            "model": name, "model_id": emb.model_id if emb else None, "index_model": meta.get("model"),
            "degraded": degraded, "degraded_reason": reason, "schema": SCHEMA_VERSION,
            # under the read lock: an in-place update changes the counters while we iterate them
            "counts": _read(gen, gen.counts) if gen else {"chunk": 0, "memory": 0, "state": 0, "total": 0},
            "size_bytes": self._size(gen), "path": str(gen.folder) if gen else None,
            "invalid": _read(gen, gen.invalid) if gen else [], "building": self._building,
            "unembedded": unembedded,
            "last_update": self._last_update, "error": self._last_error,
            "embedding": _serving_model(name, emb, degraded, reason),
        }

    def _size(self, gen: Generation | None) -> int:
        if gen is None:
            return 0
        key = (str(gen.folder), gen.meta.get("version"))
        if self._size_cache is None or self._size_cache[0] != key:
            self._size_cache = (key, gen.size_bytes())
        return self._size_cache[1]

    def open_early(self) -> list[threading.Thread]:
        """Start adopting the index on disk and loading the embedding model, side by side, in two
        daemon threads; the first search (or ``status``) waits for them through the usual locks.

        The service calls this before it imports its web framework: those imports and the
        model's (huggingface_hub's) hold the GIL, but the chunk table's SQLite scan, the vector
        files and the model's weights are read without it, so part of the start-up overlaps."""
        name = self._model_name(self._config(main_head(self.store)))

        def model() -> None:
            emb, _ = load_embedder(name)  # cached per process and name; failures are remembered, as always
            if emb is not None:
                emb.prepare()

        def index() -> None:
            try:
                self._fresh_open_only()
            except Exception:  # noqa: BLE001 - the first search opens it again and reports
                pass

        threads = [threading.Thread(target=model, daemon=True, name="atocore-model-load"),
                   threading.Thread(target=index, daemon=True, name="atocore-index-open")]
        for t in threads:
            t.start()
        return threads

    def _fresh_open_only(self) -> None:
        """First use in this process: adopt the index on disk and load the model (once)."""
        with self._update_lock:
            if self._opened:
                return
            if self.index_dir.is_dir():
                with file_lock(self.index_dir / "update.lock", timeout=600, what="the index"):
                    self._sync_from_disk()
            self._get_embedder(self._model_name(self._config(self.store.head())))
            self._opened = True

    def _incremental(self, gen: Generation, plan: _Plan) -> dict:
        cfg = self._config(plan.head)
        emb = self._embedder if gen.vectors is not None else None
        new_chunks: list[Chunk] = []
        touched: list[str] = []
        invalid: dict[str, str | None] = {}
        for ch in plan.changes:
            touched.append(ch.path)
            if ch.new is None:
                invalid[ch.path] = None
                continue
            chunks, err = _file_chunks(ch.path, self.store.read_blob(ch.new), cfg)
            invalid[ch.path] = err
            new_chunks.extend(chunks)
        if emb is not None and emb.model_id != gen.meta.get("model"):
            emb = None  # this process could not load the index's model: BM25 side only
        vecs = emb.encode([c.embed_text for c in new_chunks]) if emb is not None and new_chunks else None
        pending = gen.unembedded_rows() if emb is not None else []
        pending_vecs = emb.encode([f"{t}\n{x}" if t else x for _, t, x in pending]) if pending else None
        with gen.rw.write():
            gen.write_meta(dirty=True)
            writer = gen.writer(1)
            gen.db.execute("BEGIN")
            try:
                removed = gen.remove_paths(writer, touched)
                if pending:
                    gen.add_vectors([k for k, _, _ in pending], pending_vecs)
                    gen.db.execute("DELETE FROM unembedded")
                gen.add(writer, new_chunks, vecs)
                gen.commit_writes(writer, invalid)
            except BaseException:
                try:
                    gen.db.execute("ROLLBACK")
                except Exception:
                    pass
                raise CorruptIndex("incremental update failed half-way")
            if gen.delta_count() > COMPACT_DELTAS:
                gen.save_vectors()
            gen.write_meta(dirty=False, commit=plan.head, version=int(gen.meta.get("version", 0)) + 1,
                           dead=int(gen.meta.get("dead", 0)) + removed)
            gen.refresh_searcher()
        return {"files": len(touched), "added": len(new_chunks), "removed": removed,
                "invalid": sum(1 for e in invalid.values() if e)}

    def _rebuild(self, plan: _Plan) -> dict:
        from ..ids import new_ulid

        self._building = True
        try:
            cfg = self._config(plan.head)
            emb = self._embedder
            name = f"gen-{new_ulid().lower()}"
            folder = self.index_dir / name
            chunking = list(_chunking(cfg))
            gen = Generation.create(folder, plan.head, emb.model_id if emb else None, emb.dims if emb else None)
            gen.meta["chunking"] = chunking
            try:
                info = build_into(gen, self.store, plan.head, cfg, emb, progress=self._show_progress())
            except BaseException:
                gen.close()
                remove_folder(folder)
                raise
            gen.write_meta(dirty=False, commit=plan.head, version=1)
            gen.refresh_searcher()
            tmp = self.index_dir / "CURRENT.tmp"
            tmp.write_text(name + "\n")
            os.replace(tmp, self.index_dir / "CURRENT")
            self._seen_stamp = self._current_stamp()
            # in-flight searches keep their reference to the old generation; its files stay
            # readable until it is closed
            self._swap_in(gen, name)
            self._last_error = None
            for p in self.index_dir.glob("gen-*"):  # old generations, and debris of crashed builds
                if p.name != name:
                    remove_folder(p)
            if emb is not None:
                emb.forget_words()  # the build's word cache is large; queries refill what they need
            _release_memory()
            return info
        finally:
            self._building = False

    def _show_progress(self) -> bool:
        if self._progress is not None:
            return self._progress
        return sys.stderr.isatty()


def _read(gen: Generation, fn: Callable[[], Any]) -> Any:
    with gen.rw.read():
        return fn()


def _serving_model(name: str, emb: Embedder | None, degraded: bool, reason: str | None) -> dict:
    """Which embedding model answers searches (for /health): name, dims and weight fingerprint,
    or ``serving: "none: degraded, <why>"`` when search runs on BM25 alone."""
    out: dict[str, Any] = {"name": name, "dims": emb.dims if emb else None,
                           "fingerprint": emb.model_id.rsplit("@", 1)[-1] if emb else None}
    out["serving"] = f"none: degraded, {reason or 'no embedding model'}" if degraded else emb.model_id
    return out
