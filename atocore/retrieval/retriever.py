"""The Retriever: keeps the derived index in step with the store's main and searches it.

One Retriever per store per process (``open_retriever``); it is shared by the HTTP server's
threads. Searches read the current generation under a shared lock; an incremental update edits
it under an exclusive lock for a few milliseconds; a full rebuild builds a new generation on the
side and swaps it in, so searches keep being answered from the old one meanwhile.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import load_config
from ..errors import Busy, ValidationError
from ..projects.registry import main_head
from ..store.lock import file_lock
from .chunking import Chunk, Skip, chunks_for_file
from .embedder import Embedder, load_embedder
from .fusion import DEFAULT, FusionParams, diversify, fuse
from .lexical import STOPWORDS, code_identifiers, query_identifiers, query_words  # noqa: F401 (STOPWORDS: re-exported)
from .index import COMPACT_DELTAS, SCHEMA_VERSION, CorruptIndex, Generation, GraphBuilder, remove_folder

KINDS = ("chunk", "memory", "state")
MAX_K = 200
INCREMENTAL_MAX_FILES = 2000  # larger diffs rebuild on the side instead of editing in place
COMPACT_DEAD_RATIO = 0.25  # rebuild once deleted chunks exceed this share of live ones (+ the minimum)
COMPACT_DEAD_MIN = 16
EMBED_BATCH = 2048
GRAPH_PROCESS_MIN_FILES = 800  # rebuilds of at least this many files build the HNSW graph in a child process


@dataclass
class Hit:
    id: str
    kind: str
    project: str | None
    source: str
    title: str
    text: str
    score: float
    commit: str | None
    lines: tuple[int, int] | None
    path: str
    origin: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "project": self.project, "source": self.source,
                "title": self.title, "text": self.text, "score": round(self.score, 6), "commit": self.commit,
                "lines": list(self.lines) if self.lines else None, "path": self.path, "origin": self.origin}


bm25_query_text = query_words  # (the name the benches patch)
_WORD = re.compile(r"[A-Za-z0-9]+")  # tantivy's simple tokenizer: runs of letters and digits


def _looks_like_name(word: str, first: bool) -> bool:
    """A proper name or identifier rather than an ordinary word (numbers alone, and one letter
    such as "I", are not names)."""
    if len(word) < 2 or not any(c.isalpha() for c in word):
        return False
    return ((not first and word[0].isupper()) or any(c.isdigit() for c in word)
            or any(c.isupper() for c in word[1:]))


def _unknown_names(query: str, gen: Any, an: Any) -> list[str]:
    """Words of ``query`` that look like names and whose en_stem term no chunk has, in order."""
    out: list[str] = []
    for n, word in enumerate(_WORD.findall(query)):
        if not _looks_like_name(word, n == 0):
            continue
        terms = an.analyze(word)
        if terms and not any(gen.has_term(t) for t in terms) and word not in out:
            out.append(word)
    # a compound identifier no chunk has, with a word no chunk has (``flex-grow``, ``libcamera-still``):
    # lower-case, but as much a name as ``useEffect``; ``re-throw`` (words the store has) is not
    for ident in query_identifiers(query):
        if gen.has_ident(ident) or any(w.lower() in (o.lower() for o in out) for w in _WORD.findall(ident)):
            continue
        if any(not gen.has_term(t) for t in an.analyze(ident)):
            out.append(ident)
    return out


@dataclass
class _Plan:
    action: str  # none | incremental | rebuild
    reason: str
    head: str | None
    changes: list = field(default_factory=list)


class Retriever:
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

    # ------------------------------------------------------------------ configuration

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

    # ------------------------------------------------------------------ generations on disk

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

    # ------------------------------------------------------------------ public API

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

    def search(self, query: str, project: str | None = None, k: int = 10, prefer_project: str | None = None,
               kinds: Sequence[str] | None = None, fusion: FusionParams | None = None) -> list[Hit]:
        if not isinstance(query, str):
            raise ValidationError("query", "must be text")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ValidationError("k", f"must be an integer from 1 to {MAX_K}, got {k!r}")
        if kinds is not None:
            kinds = list(kinds)
            for kd in kinds:
                if kd not in KINDS:
                    raise ValidationError("kinds", f"{kd!r} is not a kind", KINDS)
        if not query.strip():
            return []
        gen = self._fresh()
        if gen is None:
            return []
        p = fusion or DEFAULT
        emb = self._embedder
        use_vec = gen.vectors is not None and emb is not None and gen.meta.get("model") == emb.model_id
        with gen.rw.read():
            ranked = self._rank(gen, query, project, kinds, p, emb if use_vec else None)
            if prefer_project and project is None and p.prefer_boost:
                km = gen.keymap
                ranked = sorted(((key, s * (1 + p.prefer_boost) if km[key][1] == prefer_project else s)
                                 for key, s in ranked), key=lambda kv: -kv[1])
            # damping only lowers scores, so only the head of the list can end up in the top k
            top = ranked[:4 * k + 20]
            ranked = diversify(top, gen.files_of([key for key, _ in top]), p.same_file_decay, p.same_file_free)[:k]
            rows = gen.fetch([key for key, _ in ranked])
            commit = gen.meta.get("commit")
        hits = []
        for key, score in ranked:
            r = rows.get(key)
            if r is None:
                continue
            _, cid, kind, proj, source, title, text, path, origin, l0, l1 = r
            hits.append(Hit(cid, kind, proj, source, title, text, score, commit,
                            (l0, l1) if l0 is not None else None, path, origin))
        return hits

    def _rank(self, gen: Generation, query: str, project, kinds, p: FusionParams, emb) -> list[tuple[int, float]]:
        text = bm25_query_text(query)
        bm = (gen.bm25_search(text, p.n, project, kinds, query_identifiers(query),
                              (p.title_boost, p.file_boost, p.ident_boost)) if p.method != "vector" else [])
        if p.rm3_docs and bm and bm[min(9, len(bm) - 1)][1] >= p.rm3_flat * bm[0][1]:
            bm = _rm3(gen, text, bm, p, project, kinds, query_identifiers(query))
        # word pieces cannot carry an identifier; the BM25 leg has it whole (docs/retrieval.md)
        idents = p.ident_vec != 1.0 and bool(bm) and bool(code_identifiers(query))
        if emb is None or p.method == "bm25" or (idents and p.ident_vec <= 0):
            return fuse(bm, [], None, p.with_(method="bm25"))
        qvec = emb.encode_query(query)
        vec = gen.vector_search(qvec, p.n, project, kinds)
        sims = _bm25_sims(gen, qvec, bm, vec) if p.method == "norm" else None
        weight = None
        if p.adaptive and bm:
            weight = adaptive_bm25_weight(gen, text, p)
        if idents:
            total = p.w_bm25 + p.w_vec
            weight = total - (total - (p.w_bm25 if weight is None else weight)) * p.ident_vec
        fused = fuse(bm, vec, sims, p, weight)
        if p.prf_docs and fused:
            import numpy as np

            top = np.asarray([key for key, _ in fused[:p.prf_docs]], dtype=np.uint64)
            fb = np.asarray(gen.vectors.get(top), dtype=np.float32).reshape(len(top), -1).mean(axis=0)
            q2 = qvec + p.prf_beta * fb
            q2 /= np.linalg.norm(q2) or 1.0
            vec = gen.vector_search(q2, p.n, project, kinds)
            sims = _bm25_sims(gen, q2, bm, vec) if p.method == "norm" else None
            fused = fuse(bm, vec, sims, p, weight)
        return fused

    def match_evidence(self, query: str, hits: Sequence[Hit], top: int = 5) -> dict[str, float] | None:
        """How much of the query the store can answer, from the query's en_stem terms and their IDF:

        - ``known``: the share of the query's IDF mass on terms the index has at all (an off-topic
          prompt's distinctive words are in no chunk: they carry the highest IDF);
        - ``coverage``: the largest share of that mass that one of the ``top`` hits contains;
        - ``unknown_names``: the query's words that look like names (a capital after the first
          word, an inner capital, a digit with letters: ``Kubernetes``, ``VLOOKUP``, ``useEffect``,
          ``E0597``) and that no chunk has. A prompt naming a thing the store has never seen is
          about something else; an unknown lower-case word is more often a paraphrase.

        None when the query has no content words or there is no index."""
        from .index import _analyzer

        gen = self._gen
        if gen is None:
            return None
        text = bm25_query_text(query)
        idf = gen.query_idf(text)
        total = sum(idf.values())
        if not total:
            return None
        known = sum(v for t, v in idf.items() if gen.has_term(t)) / total
        best = 0.0
        an = _analyzer()
        for h in hits[:top]:
            have = set(an.analyze(f"{h.title}\n{h.text}"))
            if h.kind == "chunk" and h.origin == "source":
                have.update(an.analyze(h.source.replace("/", " ").replace(".", " ")))
            best = max(best, sum(v for t, v in idf.items() if t in have) / total)
        return {"coverage": best, "known": known, "unknown_names": _unknown_names(query, gen, an)}

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

    # ------------------------------------------------------------------ incremental update

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

    # ------------------------------------------------------------------ full rebuild

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


def _release_memory() -> None:
    """Hand the old generation's and the build's memory back to the OS (a long-lived server's
    RSS otherwise stays at its rebuild peak)."""
    import gc

    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def _read(gen: Generation, fn: Callable[[], Any]) -> Any:
    with gen.rw.read():
        return fn()


def _chunking(cfg) -> tuple[int, int]:
    """(max chars, overlap) of the store config, or the defaults when main has no commit yet."""
    return (cfg.chunk_max_chars, cfg.chunk_overlap_chars) if cfg else (1500, 0)


def _file_chunks(path: str, raw: bytes, cfg) -> tuple[list[Chunk], str | None]:
    max_chars, overlap = _chunking(cfg)
    try:
        return chunks_for_file(path, raw, max_chars, overlap), None
    except ValidationError as exc:
        return [], str(exc)
    except Skip:
        return [], None


def _bm25_sims(gen: Generation, qvec, bm: list[tuple[int, float]], vec: list[tuple[int, float]]) -> dict[int, float]:
    """Exact cosines of the BM25 candidates the vector side did not return (fusion takes the
    vector side's own similarity for the others)."""
    found = {key for key, _ in vec}
    return gen.similarities(qvec, [key for key, _ in bm if key not in found])


def _rm3(gen: Generation, text: str, bm: list[tuple[int, float]], p: FusionParams, project, kinds,
         idents) -> list[tuple[int, float]]:
    """RM3 pseudo-relevance feedback on the BM25 leg (Lavrenko & Croft; Abdul-Jaleel et al.):
    terms weighted by their share of each top hit, times the hit's normalised score, added to the
    query with ``rm3_weight`` of its mass. Only for a query whose BM25 scores are flat (``rm3_flat``):
    a query with a hit that stands out (a name, an identifier, a known item) is left alone."""
    from collections import Counter

    from .index import _analyzer
    from .lexical import STOPWORDS

    an = _analyzer()
    qterms = set(an.analyze(text))
    top = bm[:p.rm3_docs]
    rows = gen.fetch([k for k, _ in top])
    z = sum(s for _, s in top) or 1.0
    model: Counter = Counter()
    for k, s in top:
        r = rows.get(k)
        if r is None:
            continue
        toks = [t for t in an.analyze(f"{r[5]}\n{r[6]}") if t not in STOPWORDS and not t.isdigit() and len(t) > 2]
        if not toks:
            continue
        w = s / z
        for t, c in Counter(toks).items():
            model[t] += w * c / len(toks)
    idf = gen.query_idf(" ".join(model))
    scored = sorted(((t, v * idf.get(t, 0.0)) for t, v in model.items() if t not in qterms), key=lambda tv: -tv[1])
    exp = scored[:p.rm3_terms]
    mass = sum(v for _, v in exp)
    if not mass or not qterms:
        return bm
    scale = p.rm3_weight / (1 - p.rm3_weight) * len(qterms) / mass
    return gen.bm25_search(text, p.n, project, kinds, idents, (p.title_boost, p.file_boost, p.ident_boost),
                           [(t, v * scale) for t, v in exp])


def adaptive_bm25_weight(gen: Generation, text: str, p: FusionParams) -> float:
    """BM25's weight for this query: scaled by the share of the query's information (IDF) that
    the index knows. Words no chunk contains cannot help BM25, so the vectors get more say."""
    coverage = gen.term_coverage(text)
    if coverage is None:
        return p.w_bm25
    total = p.w_bm25 + p.w_vec
    low = p.adaptive_min * total
    return low + (p.w_bm25 - low) * coverage


def build_into(gen: Generation, store, commit: str | None, cfg, emb: Embedder | None,
               progress: bool = False, batch: int = EMBED_BATCH) -> dict:
    """Fill an empty generation from the store at ``commit``.

    Three stages overlap: a worker thread reads, chunks and embeds; the main thread feeds
    tantivy and SQLite; a third stage adds vectors to the HNSW graph, in a child process for
    large builds (usearch's add competes for the GIL in a thread), so the graph is built on the
    second core while Python chunks and embeds on the first.
    """
    files = store.files(commit) if commit else {}
    paths = sorted(files)
    main_q: queue.Queue = queue.Queue(maxsize=4)
    vec_q: queue.Queue = queue.Queue(maxsize=4)
    invalid: dict[str, str] = {}
    failure: list[BaseException] = []
    busy = {"read_chunk": 0.0, "embed": 0.0, "hnsw": 0.0, "bm25_sql": 0.0}  # seconds of work per stage

    def produce() -> None:
        try:
            pending: list[Chunk] = []

            def flush() -> None:
                t = time.perf_counter()
                vecs = _embed(emb, pending)
                busy["embed"] += time.perf_counter() - t
                start = int(gen.meta["next_key"])
                gen.meta["next_key"] = start + len(pending)
                main_q.put((start, list(pending)))
                if vecs is not None:
                    vec_q.put((start, vecs, [c.project for c in pending]))

            t = time.perf_counter()
            for path in paths:
                if failure:
                    return
                chunks, err = _file_chunks(path, store.read_blob(files[path]), cfg)
                if err:
                    invalid[path] = err
                pending.extend(chunks)
                if len(pending) >= batch:
                    busy["read_chunk"] += time.perf_counter() - t
                    flush()
                    pending = []
                    t = time.perf_counter()
            if pending:
                flush()
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)
        finally:
            main_q.put(None)
            vec_q.put(None)

    graph = None
    if gen.vectors is not None and len(paths) >= GRAPH_PROCESS_MIN_FILES:
        try:
            graph = GraphBuilder(gen.folder, int(gen.meta["dims"]))
        except Exception:  # no subprocesses here: build the graph in a thread instead
            graph = None

    def add_vectors() -> None:
        try:
            while True:
                item = vec_q.get()
                if item is None:
                    return
                start, vecs, projects = item
                if gen.vectors is not None and not failure:
                    t = time.perf_counter()
                    if graph is not None:
                        graph.add(start, vecs, projects)
                    else:
                        gen.add_graph_batch(start, vecs, projects)
                    busy["hnsw"] += time.perf_counter() - t
        except BaseException as exc:
            failure.append(exc)
            while vec_q.get() is not None:  # drain so the producer never blocks
                pass

    workers = [threading.Thread(target=produce, daemon=True, name="atocore-index-chunk"),
               threading.Thread(target=add_vectors, daemon=True, name="atocore-index-hnsw")]
    for w in workers:
        w.start()
    writer = gen.writer(1)
    bar = _Progress(progress, len(paths))
    total = 0
    gen.db.execute("BEGIN")
    try:
        while True:
            item = main_q.get()
            if item is None:
                break
            start, chunks = item
            if not failure:
                t = time.perf_counter()
                gen.add_rows(writer, start, chunks)
                busy["bm25_sql"] += time.perf_counter() - t
            total += len(chunks)
            bar.advance(total)
        for w in workers:
            w.join()
        if failure:
            raise failure[0]
        gen.commit_writes(writer, invalid)
    except BaseException:
        failure.append(RuntimeError("stopped"))
        if graph is not None:
            graph.abort()
        try:
            gen.db.execute("ROLLBACK")
        except Exception:
            pass
        raise
    finally:
        bar.close()
    t = time.perf_counter()
    if graph is not None:
        gen.vectors, gen.parts = graph.finish()
        busy["hnsw_wait"] = time.perf_counter() - t
        gen.db.execute("DELETE FROM vec_delta")
    else:
        gen.save_vectors()
    gen.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the bulk load lives in the WAL until then
    busy["save"] = time.perf_counter() - t
    return {"files": len(paths), "chunks": total, "invalid": len(invalid),
            "stage_seconds": {k: round(v, 2) for k, v in busy.items()}}


def _serving_model(name: str, emb: Embedder | None, degraded: bool, reason: str | None) -> dict:
    """Which embedding model answers searches (for /health): name, dims and weight fingerprint,
    or ``serving: "none: degraded, <why>"`` when search runs on BM25 alone."""
    out: dict[str, Any] = {"name": name, "dims": emb.dims if emb else None,
                           "fingerprint": emb.model_id.rsplit("@", 1)[-1] if emb else None}
    out["serving"] = f"none: degraded, {reason or 'no embedding model'}" if degraded else emb.model_id
    return out


def _embed(emb: Embedder | None, chunks: list[Chunk]):
    return emb.encode([c.embed_text for c in chunks]) if emb is not None else None


class _Progress:
    """A rich progress bar on a terminal, nothing otherwise."""

    def __init__(self, enabled: bool, files: int):
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            # stderr, the stream _show_progress checked: stdout may be a JSON answer or the MCP wire
            self._p = Progress(SpinnerColumn(), TextColumn("indexing: {task.fields[chunks]} chunks"),
                               TimeElapsedColumn(), transient=True, console=Console(stderr=True))
            self._task = self._p.add_task("index", total=None, chunks=0)
            self._p.start()

    def advance(self, chunks: int) -> None:
        if self._p is not None:
            self._p.update(self._task, chunks=chunks)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


_retrievers: dict[tuple[str, str | None], Retriever] = {}
_retrievers_lock = threading.Lock()


def open_retriever(store, model: str | None = None) -> Retriever:
    """The process-wide Retriever of ``store`` (created on first use)."""
    key = (str(Path(store.path).resolve()), model)
    with _retrievers_lock:
        r = _retrievers.get(key)
        if r is None:
            r = _retrievers[key] = Retriever(store, model)
        return r


def search_payload(retriever: Retriever, query: str, project: str | None = None, k: int = 10) -> dict:
    """The object returned by POST /search and ``atocore search --json``."""
    prefer = None
    inferred: dict | None = None
    if project is None:
        try:
            from ..projects.infer import infer_project
        except ImportError:
            infer_project = None  # type: ignore[assignment]
        if infer_project is not None:
            try:
                pid, conf, reasons = infer_project(retriever.store, query, retriever=retriever)
            except Exception:  # inference is a hint; never fail a search over it
                pid, conf, reasons = None, 0.0, []
            if pid:
                prefer = pid
                inferred = {"project": pid, "confidence": conf, "reasons": list(reasons)}
    hits = retriever.search(query, project=project, k=k, prefer_project=prefer)
    out: dict[str, Any] = {"project": project, "hits": [h.to_dict() for h in hits]}
    if inferred:
        out["inferred"] = inferred
    return out
