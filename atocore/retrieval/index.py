"""One on-disk index generation: tantivy BM25 + usearch vectors + a SQLite chunk table.

Layout of ``<store>/atocore-index/``::

    CURRENT                 name of the generation being served (swapped with os.replace)
    update.lock             serialises updaters across processes
    gen-<id>/meta.json      schema, commit, model id, dims, next key, version, dirty flag
    gen-<id>/bm25/          tantivy index (key, path, project, kind, title, body; en_stem)
    gen-<id>/vectors.usearch  HNSW graph as of the last compaction
    gen-<id>/chunks.sqlite  chunk table, invalid files, and the vector delta log since compaction

A full rebuild writes a new generation and swaps ``CURRENT``; an incremental update edits the
served generation in place under a write lock (after marking it dirty, so a crash half-way is
detected as corruption and rebuilt). Vector changes go to the SQLite delta log in the same
transaction as the chunk rows, so an incremental update never rewrites the whole vector file.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .chunking import Chunk

SCHEMA_VERSION = 1
KIND_CODES = {"chunk": 0, "memory": 1, "state": 2}
HNSW = {"connectivity": 16, "expansion_add": 64, "expansion_search": 200}
EXACT_MAX = 4096  # vector searches over at most this many (filtered) vectors are exact
OVERSAMPLE_MAX = 1000  # larger filtered searches over-fetch from the HNSW graph, up to this many
COMPACT_DELTAS = 4096


class CorruptIndex(Exception):
    pass


class RWLock:
    """Many readers or one writer (searches read; an in-place update writes)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("key", stored=False, indexed=True, fast=True)
    sb.add_text_field("path", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("project", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("kind", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title", tokenizer_name="en_stem", index_option="freq")
    sb.add_text_field("body", tokenizer_name="en_stem", index_option="freq")
    return sb.build()


SQL_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (key INTEGER PRIMARY KEY, cid TEXT, kind TEXT, project TEXT,
    source TEXT, title TEXT, text TEXT, path TEXT, origin TEXT, l0 INTEGER, l1 INTEGER);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE TABLE IF NOT EXISTS invalid (path TEXT PRIMARY KEY, error TEXT);
CREATE TABLE IF NOT EXISTS vec_delta (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER, vec BLOB);
CREATE TABLE IF NOT EXISTS unembedded (key INTEGER PRIMARY KEY);
"""


_ANALYZER = None


def _analyzer():
    """tantivy's en_stem pipeline, to look query words up the way they were indexed."""
    global _ANALYZER
    if _ANALYZER is None:
        import tantivy

        _ANALYZER = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
                     .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stemmer("english")).build())
    return _ANALYZER


def new_vector_index(dims: int):
    from usearch.index import Index

    return Index(ndim=dims, metric="ip", dtype="f16", connectivity=HNSW["connectivity"],
                 expansion_add=HNSW["expansion_add"], expansion_search=HNSW["expansion_search"])


class GraphBuilder:
    """Feeds the HNSW graph of a full rebuild to a child process (see ``graph_worker``)."""

    def __init__(self, path: Path, dims: int):
        import subprocess
        import sys

        self.path = path
        self.dims = dims
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atocore.retrieval.graph_worker", str(path), str(dims), json.dumps(HNSW)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def add(self, start: int, vectors) -> None:
        import numpy as np

        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        self.proc.stdin.write(start.to_bytes(8, "little") + len(vecs).to_bytes(8, "little") + vecs.tobytes())

    def finish(self, timeout: float = 600.0):
        """Wait for the graph; return it loaded in this process."""
        import subprocess

        from usearch.index import Index

        try:
            out, _ = self.proc.communicate((0).to_bytes(16, "little"), timeout=timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            raise RuntimeError("the HNSW builder did not finish in time") from None
        if out.strip() != b"ok":
            raise RuntimeError(f"the HNSW builder failed: {out.decode(errors='replace').strip()}")
        vec = Index.restore(str(self.path), view=False)
        vec.expansion_search = HNSW["expansion_search"]
        return vec

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


class Generation:
    """An open index generation. Reads are thread-safe; writes hold ``self.rw.write()``."""

    def __init__(self, folder: Path, meta: dict, create: bool = False):
        import tantivy

        self.folder = folder
        self.meta = meta
        self.rw = RWLock()
        self._sql_lock = threading.Lock()
        self.schema = _schema()
        bm25 = folder / "bm25"
        if create:
            bm25.mkdir(parents=True, exist_ok=True)
        elif not (bm25 / "meta.json").is_file():
            raise CorruptIndex(f"{bm25} has no tantivy meta.json")
        try:
            self.bm25 = tantivy.Index(self.schema, str(bm25), reuse=True)
        except Exception as exc:
            raise CorruptIndex(f"tantivy index unreadable: {exc}") from None
        self.db = sqlite3.connect(str(folder / "chunks.sqlite"), check_same_thread=False, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=OFF")  # derived data: a crash marks the index dirty
            self.db.executescript(SQL_SCHEMA)
            rows = self.db.execute("SELECT key, path, project, kind FROM chunks").fetchall()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise CorruptIndex(f"chunk table unreadable: {exc}") from None
        # key -> (path, project, kind): what filtering and grouping need, without SQL per hit
        self.keymap: dict[int, tuple[str, str | None, str]] = {k: (p, pr, kd) for k, p, pr, kd in rows}
        self.groups: Counter = Counter((pr, kd) for _, pr, kd in self.keymap.values())
        self._exact_cache: dict[tuple, tuple] = {}
        self.vectors = None
        dims = meta.get("dims")
        if dims:
            self.vectors = self._load_vectors(int(dims), create)
        if not create:
            self._check_consistency()
        self._searcher = self.bm25.searcher()

    # ------------------------------------------------------------------ open / create

    @classmethod
    def create(cls, folder: Path, commit: str | None, model_id: str | None, dims: int | None) -> "Generation":
        folder.mkdir(parents=True, exist_ok=False)
        meta = {"schema": SCHEMA_VERSION, "commit": commit, "model": model_id, "dims": dims,
                "next_key": 1, "version": 0, "dirty": True}
        return cls(folder, meta, create=True)

    @classmethod
    def open(cls, folder: Path) -> "Generation":
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise CorruptIndex(f"{folder / 'meta.json'}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("dirty"):
            raise CorruptIndex("an update was interrupted (index marked dirty)")
        return cls(folder, meta)

    def _load_vectors(self, dims: int, create: bool):
        import numpy as np
        from usearch.index import Index

        path = self.folder / "vectors.usearch"
        if create:
            return new_vector_index(dims)
        if not path.is_file():
            raise CorruptIndex("vector file missing")
        try:
            vec = Index.restore(str(path), view=False)
        except Exception as exc:
            raise CorruptIndex(f"vector index unreadable: {exc}") from None
        if vec is None or vec.ndim != dims:
            raise CorruptIndex("vector index unreadable or of the wrong dimension")
        vec.expansion_search = HNSW["expansion_search"]
        for key, blob in self.db.execute("SELECT key, vec FROM vec_delta ORDER BY seq"):
            if vec.contains(key):
                vec.remove(key)
            if blob is not None:
                vec.add(key, np.frombuffer(blob, dtype=np.float16).astype(np.float32))
        return vec

    def _check_consistency(self) -> None:
        n = len(self.keymap)
        docs = self.bm25.searcher().num_docs
        if docs != n:
            raise CorruptIndex(f"BM25 index has {docs} documents, chunk table {n}")
        if self.vectors is not None:
            missing = self.unembedded_count()
            if len(self.vectors) + missing != n:
                raise CorruptIndex(f"vector index has {len(self.vectors)} vectors (+{missing} pending), chunk table {n}")

    def close(self) -> None:
        try:
            self.db.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ writing

    def write_meta(self, **changes) -> None:
        self.meta.update(changes)
        tmp = self.folder / "meta.json.tmp"
        tmp.write_text(json.dumps(self.meta, indent=1))
        os.replace(tmp, self.folder / "meta.json")

    def writer(self, threads: int = 1):
        return self.bm25.writer(heap_size=max(32_000_000, 24_000_000 * threads), num_threads=threads)

    def add(self, writer, chunks: Sequence[Chunk], vectors=None) -> list[int]:
        """Add chunks and their vectors (caller commits ``writer`` and the SQL transaction).

        Without ``vectors`` (a process that cannot load the model updating an index that has
        them) the chunks are recorded as unembedded; the next process with the model embeds them.
        """
        start = int(self.meta["next_key"])
        keys = list(range(start, start + len(chunks)))
        self.meta["next_key"] = start + len(chunks)
        self.add_rows(writer, start, chunks)
        if self.vectors is not None and len(keys):
            if vectors is None:
                self.db.executemany("INSERT INTO unembedded VALUES (?)", [(k,) for k in keys])
            else:
                self.add_vectors(keys, vectors)
        return keys

    def add_vectors(self, keys: Sequence[int], vectors) -> None:
        import numpy as np

        self.vectors.add(np.asarray(keys, dtype=np.uint64), vectors, threads=1)
        half = np.asarray(vectors, dtype=np.float16)
        self.db.executemany("INSERT INTO vec_delta(key, vec) VALUES (?, ?)",
                            [(k, half[i].tobytes()) for i, k in enumerate(keys)])
        self._exact_cache.clear()

    def unembedded_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM unembedded").fetchone()[0]

    def unembedded_rows(self) -> list[tuple[int, str, str]]:
        keys = [k for (k,) in self.db.execute("SELECT key FROM unembedded ORDER BY key")]
        rows = self.fetch(keys)
        return [(k, rows[k][5], rows[k][6]) for k in keys if k in rows]

    def add_rows(self, writer, start: int, chunks: Sequence[Chunk]) -> None:
        """The BM25 documents and chunk rows of ``chunks``, keyed from ``start``."""
        import tantivy

        keys = range(start, start + len(chunks))
        rows = []
        for key, c in zip(keys, chunks):
            doc = tantivy.Document()
            doc.add_unsigned("key", key)
            doc.add_text("path", c.path)
            if c.project:
                doc.add_text("project", c.project)
            doc.add_text("kind", c.kind)
            doc.add_text("title", c.title)
            doc.add_text("body", c.text)
            writer.add_document(doc)
            rows.append((key, c.id, c.kind, c.project, c.source, c.title, c.text, c.path, c.origin,
                         c.lines[0] if c.lines else None, c.lines[1] if c.lines else None))
            self.keymap[key] = (c.path, c.project, c.kind)
            self.groups[(c.project, c.kind)] += 1
        self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        self._exact_cache.clear()

    def remove_paths(self, writer, paths: Iterable[str]) -> int:
        removed = 0
        for path in paths:
            keys = [k for (k,) in self.db.execute("SELECT key FROM chunks WHERE path = ?", (path,))]
            if not keys:
                continue
            writer.delete_documents_by_term("path", path)
            self.db.execute("DELETE FROM chunks WHERE path = ?", (path,))
            self.db.executemany("DELETE FROM unembedded WHERE key = ?", [(k,) for k in keys])
            for k in keys:
                p, pr, kd = self.keymap.pop(k)
                self.groups[(pr, kd)] -= 1
                if self.vectors is not None and self.vectors.contains(k):
                    self.vectors.remove(k)
                    self.db.execute("INSERT INTO vec_delta(key, vec) VALUES (?, NULL)", (k,))
            removed += len(keys)
        self._exact_cache.clear()
        return removed

    def set_invalid(self, path: str, error: str | None) -> None:
        if error is None:
            self.db.execute("DELETE FROM invalid WHERE path = ?", (path,))
        else:
            self.db.execute("INSERT OR REPLACE INTO invalid VALUES (?, ?)", (path, error))

    def invalid(self) -> list[dict]:
        with self._sql_lock:
            return [{"path": p, "error": e} for p, e in self.db.execute("SELECT path, error FROM invalid ORDER BY path")]

    def save_vectors(self) -> None:
        """Compact: write the whole vector index and empty the delta log."""
        if self.vectors is None:
            return
        tmp = self.folder / "vectors.usearch.tmp"
        self.vectors.save(str(tmp))
        os.replace(tmp, self.folder / "vectors.usearch")
        self.db.execute("DELETE FROM vec_delta")

    def delta_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM vec_delta").fetchone()[0]

    def refresh_searcher(self) -> None:
        self.bm25.reload()
        self._searcher = self.bm25.searcher()

    # ------------------------------------------------------------------ reading

    def bm25_search(self, text: str, n: int, project: str | None = None,
                    kinds: Sequence[str] | None = None) -> list[tuple[int, float]]:
        import tantivy

        if not text.strip():
            return []
        try:
            q = self.bm25.parse_query(text, ["title", "body"], field_boosts={"title": 1.5})
        except ValueError:
            return []
        clauses = []
        if project is not None:
            clauses.append((tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "project", project)))
        if kinds:
            ks = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "kind", k)) for k in kinds]
            clauses.append((tantivy.Occur.Must, tantivy.Query.boolean_query(ks)))
        if clauses:
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), *clauses])
        searcher = self._searcher
        res = searcher.search(q, n, count=False).hits
        if not res:
            return []
        keys = searcher.fast_field_values("key", [addr for _, addr in res])
        return [(int(k), float(s)) for (s, _), k in zip(res, keys) if k is not None and int(k) in self.keymap]

    def term_coverage(self, text: str) -> float | None:
        """Share of the query's IDF mass carried by words that occur in the index (en_stem terms)."""
        import math

        terms = set(_analyzer().analyze(text))
        if not terms:
            return None
        searcher = self._searcher
        n = max(1, searcher.num_docs)
        have = total = 0.0
        for t in terms:
            df = max(searcher.doc_freq("body", t), searcher.doc_freq("title", t))
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5)) if df else math.log(1 + (n + 0.5) / 0.5)
            total += idf
            if df:
                have += idf
        return have / total if total else None

    def _eligible(self, project: str | None, kinds: Sequence[str] | None) -> int:
        if project is None and not kinds:
            return len(self.keymap)
        return sum(n for (pr, kd), n in self.groups.items()
                   if (project is None or pr == project) and (not kinds or kd in kinds))

    def vector_search(self, qvec, n: int, project: str | None = None,
                      kinds: Sequence[str] | None = None) -> list[tuple[int, float]]:
        """(key, cosine similarity) best first, only keys that pass the filter."""
        import numpy as np

        if self.vectors is None or not len(self.keymap):
            return []
        filtered = project is not None or bool(kinds)
        eligible = self._eligible(project, kinds)
        if not eligible:
            return []
        if eligible <= EXACT_MAX:  # small sets: exact, deterministic and cheap
            ck = (project, tuple(sorted(kinds)) if kinds else None)
            cached = self._exact_cache.get(ck)
            if cached is None:
                keys = np.fromiter((k for k, (_, pr, kd) in self.keymap.items()
                                    if (project is None or pr == project) and (not kinds or kd in kinds)),
                                   dtype=np.uint64)
                mat = np.asarray(self.vectors.get(keys), dtype=np.float32).reshape(len(keys), -1)
                cached = (keys, mat)
                if len(self._exact_cache) > 16:
                    self._exact_cache.clear()
                self._exact_cache[ck] = cached
            keys, mat = cached
            # einsum, not BLAS: a BLAS gemv may wake worker threads that spin on a busy machine
            sims = np.einsum("ij,j->i", mat, np.asarray(qvec, dtype=np.float32))
            if len(sims) > n:
                part = np.argpartition(-sims, n - 1)[:n]
                top = part[np.argsort(-sims[part])]
            else:
                top = np.argsort(-sims)
            return [(int(keys[i]), float(sims[i])) for i in top]
        want = n if not filtered else min(len(self.keymap), OVERSAMPLE_MAX,
                                          int(n * len(self.keymap) / eligible * 1.5) + 8)
        m = self.vectors.search(np.asarray(qvec, dtype=np.float32), max(want, n))
        keymap = self.keymap
        if not filtered:
            return [(k, 1.0 - d) for k, d in zip(m.keys.tolist(), m.distances.tolist()) if k in keymap][:n]
        out = []
        for key, dist in zip(m.keys.tolist(), m.distances.tolist()):
            info = keymap.get(key)
            if info is None or (project is not None and info[1] != project) or (kinds and info[2] not in kinds):
                continue
            out.append((key, 1.0 - dist))
            if len(out) >= n:
                break
        return out

    def similarities(self, qvec, keys: Sequence[int]):
        """Cosine similarity of the query to the given chunks (for fusing BM25-only candidates)."""
        import numpy as np

        if self.vectors is None or not keys:
            return {}
        arr = np.asarray(keys, dtype=np.uint64)
        mat = np.asarray(self.vectors.get(arr), dtype=np.float32).reshape(len(keys), -1)
        sims = np.einsum("ij,j->i", mat, np.asarray(qvec, dtype=np.float32))
        return dict(zip(keys, sims.tolist()))

    def fetch(self, keys: Sequence[int]) -> dict[int, tuple]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self._sql_lock:
            rows = self.db.execute(f"SELECT * FROM chunks WHERE key IN ({marks})", list(keys)).fetchall()
        return {r[0]: r for r in rows}

    def counts(self) -> dict:
        c = Counter()
        for (_, kd), n in self.groups.items():
            c[kd] += n
        return {"chunk": c.get("chunk", 0), "memory": c.get("memory", 0), "state": c.get("state", 0),
                "total": len(self.keymap)}

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
