"""One on-disk index generation: tantivy BM25 + usearch vectors + a SQLite chunk table.

Layout of ``<store>/atocore-index/``::

    CURRENT                 name of the generation being served (swapped with os.replace)
    update.lock             serialises updaters across processes
    gen-<id>/meta.json      schema, commit, model id, dims, next key, version, dirty flag
    gen-<id>/bm25/          tantivy index (key, path, project, kind, title, body; en_stem)
    gen-<id>/vectors.usearch  HNSW graph as of the last compaction
    gen-<id>/parts/<project>.usearch  one more HNSW graph per project (same vectors), for filtered search
    gen-<id>/chunks.sqlite  chunk table, invalid files, and the vector delta log since compaction

A full rebuild writes a new generation and swaps ``CURRENT``; an incremental update edits the
served generation in place under a write lock (after marking it dirty, so a crash half-way is
detected as corruption and rebuilt). Vector changes go to the SQLite delta log in the same
transaction as the chunk rows, so an incremental update never rewrites the whole vector file.

Project-filtered vector search is what the context path does on almost every prompt. Searching
the whole graph for a project holding a quarter of the chunks meant over-fetching ~6x and
throwing most of it away; each project's own graph answers the same question directly, for
about half the cost, at the price of holding every vector twice (~0.6 KB per chunk).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .chunking import Chunk
from .lexical import identifiers, path_fields

SCHEMA_VERSION = 3  # 2: per-project HNSW graphs (parts/); 3: file and ident fields (lexical.py)
KIND_CODES = {"chunk": 0, "memory": 1, "state": 2}
HNSW = {"connectivity": 16, "expansion_add": 64, "expansion_search": 200}
EXACT_MAX = 4096  # vector searches over at most this many (filtered) vectors are exact
OVERSAMPLE_MAX = 1000  # larger filtered searches over-fetch from the HNSW graph, up to this many
COMPACT_DELTAS = 4096
PARTS_DIR = "parts"


def chunk_path_fields(c: Chunk) -> tuple[str, list[str]]:
    """What of a chunk's file name is searchable: a source file's path words and names; a state
    entry's key (its whole identifier, e.g. ``build-command``); nothing for other chunks."""
    if c.origin == "source":
        return path_fields(c.source)
    if c.origin == "state" and "#" in c.source:
        key = c.source.rsplit("#", 1)[1].lower()
        return "", [key]
    return "", []


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
    sb.add_text_field("file", tokenizer_name="en_stem", index_option="freq")  # words of the source path
    sb.add_text_field("ident", tokenizer_name="whitespace", index_option="freq")  # whole identifiers, lower-cased
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


def bm25_idf(n: int, df: int) -> float:
    """BM25's IDF of a term in ``df`` of ``n`` documents (tantivy's and Lucene's formula)."""
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


_TERMS: dict[str, frozenset[str]] = {}
_TERMS_MAX = 2048  # texts (~6 kB each with their terms): the chunks recent prompts were answered from
_TERMS_LOCK = threading.Lock()


def term_set(text: str) -> frozenset[str]:
    """``set(_analyzer().analyze(text))``: the en_stem terms of ``text``, remembered for the last
    ``_TERMS_MAX`` texts asked about.

    The context path checks the prompt's terms against the top hits' whole texts on every
    request (``Retriever.match_evidence``); analyzing a 600-character chunk costs ~50 us, mostly
    one Python string per token, and the same chunks answer related prompts again and again.
    Keyed by the text itself, so an entry can never be stale: a changed chunk is another text."""
    got = _TERMS.get(text)
    if got is None:
        got = frozenset(_analyzer().analyze(text))
        with _TERMS_LOCK:
            while len(_TERMS) >= _TERMS_MAX:  # oldest first
                _TERMS.pop(next(iter(_TERMS)), None)
            _TERMS[text] = got
    return got


def _restore(path: Path):
    from usearch.index import Index

    vec = Index.restore(str(path), view=False)
    if vec is None:
        raise CorruptIndex(f"{path.name} is not a vector index")
    vec.expansion_search = HNSW["expansion_search"]
    return vec


def new_vector_index(dims: int):
    from usearch.index import Index

    return Index(ndim=dims, metric="ip", dtype="f16", connectivity=HNSW["connectivity"],
                 expansion_add=HNSW["expansion_add"], expansion_search=HNSW["expansion_search"])


def by_project(projects: Sequence[str | None]) -> dict[str, list[int]]:
    """Positions grouped by project (chunks with no project are in no per-project graph)."""
    out: dict[str, list[int]] = {}
    for i, pr in enumerate(projects):
        if pr is not None:
            out.setdefault(pr, []).append(i)
    return out


class GraphBuilder:
    """Feeds the HNSW graphs of a full rebuild (the whole index and one per project) to a child
    process (see ``graph_worker``)."""

    def __init__(self, folder: Path, dims: int):
        import subprocess
        import sys

        self.folder = folder
        self.dims = dims
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atocore.retrieval.graph_worker", str(folder), str(dims), json.dumps(HNSW)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def _send(self, name: str, keys, vecs) -> None:
        import numpy as np

        raw = name.encode()
        self.proc.stdin.write(len(keys).to_bytes(8, "little") + len(raw).to_bytes(8, "little") + raw
                              + np.asarray(keys, dtype=np.uint64).tobytes() + vecs.tobytes())

    def add(self, start: int, vectors, projects: Sequence[str | None]) -> None:
        import numpy as np

        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        keys = np.arange(start, start + len(vecs), dtype=np.uint64)
        self._send("", keys, vecs)
        for project, pos in by_project(projects).items():
            self._send(project, keys[pos], np.ascontiguousarray(vecs[pos]))

    def finish(self, timeout: float = 600.0):
        """Wait for the graphs; return (whole, {project: part}) loaded in this process."""
        import subprocess

        try:
            out, _ = self.proc.communicate((0).to_bytes(16, "little"), timeout=timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            raise RuntimeError("the HNSW builder did not finish in time") from None
        if out.strip() != b"ok":
            raise RuntimeError(f"the HNSW builder failed: {out.decode(errors='replace').strip()}")
        return _restore(self.folder / "vectors.usearch"), {
            f.stem: _restore(f) for f in sorted((self.folder / PARTS_DIR).glob("*.usearch"))}

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
            rows = self.db.execute("SELECT key, path, project, kind, cid FROM chunks").fetchall()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise CorruptIndex(f"chunk table unreadable: {exc}") from None
        # key -> (path, project, kind): what filtering and grouping need, without SQL per hit
        self.keymap: dict[int, tuple[str, str | None, str]] = {k: (p, pr, kd) for k, p, pr, kd, _ in rows}
        self.groups: Counter = Counter((pr, kd) for _, pr, kd in self.keymap.values())
        self._files = _FileTable(int(meta.get("next_key", 1)))
        self._files.set([k for k, *_ in rows], [_group(p, kd, cid) for _, p, _, kd, cid in rows])
        self._exact_cache: dict[tuple, tuple] = {}
        self.vectors = None
        self.parts: dict[str, object] = {}  # project -> HNSW graph of that project's vectors
        dims = meta.get("dims")
        if dims:
            self.vectors = self._load_vectors(int(dims), create)
        if not create:
            self._check_consistency()
        self._searcher = self.bm25.searcher()
        self._df = (self._searcher, {})  # the searcher, and its (field, term) -> document frequency

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

        path = self.folder / "vectors.usearch"
        if create:
            return new_vector_index(dims)
        if not path.is_file():
            raise CorruptIndex("vector file missing")
        try:
            vec = _restore(path)
            self.parts = {f.stem: _restore(f) for f in sorted((self.folder / PARTS_DIR).glob("*.usearch"))}
        except Exception as exc:
            raise CorruptIndex(f"vector index unreadable: {exc}") from None
        if vec.ndim != dims or any(part.ndim != dims for part in self.parts.values()):
            raise CorruptIndex("vector index of the wrong dimension")
        self.vectors = vec
        for key, blob in self.db.execute("SELECT key, vec FROM vec_delta ORDER BY seq"):
            self._remove_vector(key)
            if blob is not None:
                info = self.keymap.get(key)  # (a key added then removed again is in no part)
                self._add_to_graphs(np.asarray([key], dtype=np.uint64),
                                    np.frombuffer(blob, dtype=np.float16).astype(np.float32).reshape(1, -1),
                                    [info[1] if info else None])
        return vec

    def _part(self, project: str):
        part = self.parts.get(project)
        if part is None:
            part = self.parts[project] = new_vector_index(int(self.meta["dims"]))
        return part

    def _add_to_graphs(self, keys, vectors, projects: Sequence[str | None]) -> None:
        """Add vectors to the whole graph and to their projects' graphs."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        self.vectors.add(keys, vectors, threads=1)
        for project, pos in by_project(projects).items():
            self._part(project).add(keys[pos], vectors[pos], threads=1)

    def add_graph_batch(self, start: int, vectors, projects: Sequence[str | None]) -> None:
        """A full rebuild's batch of vectors keyed from ``start`` (graphs only; no delta log)."""
        import numpy as np

        self._add_to_graphs(np.arange(start, start + len(projects), dtype=np.uint64), vectors, projects)

    def _remove_vector(self, key: int, project: str | None = None) -> None:
        if self.vectors.contains(key):
            self.vectors.remove(key)
        for part in ([self.parts[project]] if project in self.parts else self.parts.values()):
            if part.contains(key):
                part.remove(key)

    def _check_consistency(self) -> None:
        n = len(self.keymap)
        docs = self.bm25.searcher().num_docs
        if docs != n:
            raise CorruptIndex(f"BM25 index has {docs} documents, chunk table {n}")
        if self.vectors is not None:
            missing = self.unembedded_count()
            if len(self.vectors) + missing != n:
                raise CorruptIndex(f"vector index has {len(self.vectors)} vectors (+{missing} pending), chunk table {n}")
            if self.meta.get("schema") != SCHEMA_VERSION:
                return  # an older layout: served as it is until the rebuild that replaces it
            pending = Counter(pr for (pr,) in self.db.execute(
                "SELECT project FROM chunks WHERE key IN (SELECT key FROM unembedded)"))
            per_project = Counter()
            for (pr, _), count in self.groups.items():
                per_project[pr] += count
            for pr, count in per_project.items():
                have = len(self.parts[pr]) if pr in self.parts else 0
                if pr is not None and count and have + pending[pr] != count:
                    raise CorruptIndex(f"vector graph of project {pr} has {have} vectors (+{pending[pr]} pending), "
                                       f"chunk table {count}")

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
        """Vectors of chunks already in the chunk table, logged to the delta log."""
        import numpy as np

        keymap = self.keymap
        self._add_to_graphs(np.asarray(keys, dtype=np.uint64), vectors, [keymap[k][1] for k in keys])
        half = np.asarray(vectors, dtype=np.float16)
        self.db.executemany("INSERT INTO vec_delta(key, vec) VALUES (?, ?)",
                            [(k, half[i].tobytes()) for i, k in enumerate(keys)])
        self._exact_cache.clear()

    def unembedded_count(self) -> int:
        with self._sql_lock:  # status() asks while searches share the connection
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
            doc.add_text("body", f"{c.title}\n{c.text}" if c.title else c.text)  # as the chunk reads
            file_words, file_idents = chunk_path_fields(c)
            if file_words:
                doc.add_text("file", file_words)
            idents = file_idents + identifiers(f"{c.title}\n{c.text}")
            if idents:
                doc.add_text("ident", " ".join(dict.fromkeys(idents)))
            writer.add_document(doc)
            rows.append((key, c.id, c.kind, c.project, c.source, c.title, c.text, c.path, c.origin,
                         c.lines[0] if c.lines else None, c.lines[1] if c.lines else None))
            self.keymap[key] = (c.path, c.project, c.kind)
            self.groups[(c.project, c.kind)] += 1
        self._files.set(list(keys), [_group(c.path, c.kind, c.id) for c in chunks])
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
            self._files.clear(keys)
            for k in keys:
                p, pr, kd = self.keymap.pop(k)
                self.groups[(pr, kd)] -= 1
                if self.vectors is not None and self.vectors.contains(k):
                    self._remove_vector(k, pr)
                    self.db.execute("INSERT INTO vec_delta(key, vec) VALUES (?, NULL)", (k,))
            removed += len(keys)
        self._exact_cache.clear()
        return removed

    def set_invalid(self, path: str, error: str | None) -> None:
        if error is None:
            self.db.execute("DELETE FROM invalid WHERE path = ?", (path,))
        else:
            self.db.execute("INSERT OR REPLACE INTO invalid VALUES (?, ?)", (path, error))

    def commit_writes(self, writer, invalid: dict[str, str | None]) -> None:
        """Record the files that failed validation, then commit tantivy and the SQL transaction."""
        for path, error in invalid.items():
            self.set_invalid(path, error)
        writer.commit()
        writer.wait_merging_threads()
        self.db.execute("COMMIT")

    def invalid(self) -> list[dict]:
        with self._sql_lock:
            return [{"path": p, "error": e} for p, e in self.db.execute("SELECT path, error FROM invalid ORDER BY path")]

    def save_vectors(self) -> None:
        """Compact: write the whole vector index and empty the delta log."""
        if self.vectors is None:
            return
        folder = self.folder / PARTS_DIR
        folder.mkdir(exist_ok=True)
        for project, part in self.parts.items():
            _save(part, folder / f"{project}.usearch")
        _save(self.vectors, self.folder / "vectors.usearch")
        self.db.execute("DELETE FROM vec_delta")

    def delta_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM vec_delta").fetchone()[0]

    def refresh_searcher(self) -> None:
        self.bm25.reload()
        self._searcher = self.bm25.searcher()
        self._df = (self._searcher, {})  # one assignment: a reader sees the old pair or the new one

    def doc_freq(self, field: str, term: str) -> int:
        """Documents of the served searcher holding ``term`` in ``field``. A context build asks
        for the same few query terms 4-5 times (coverage, IDF, known terms, names): remembered
        until the searcher changes (an update or a rebuild)."""
        searcher, df = self._df
        got = df.get((field, term))
        if got is None:
            if len(df) > 100_000:
                df.clear()
            got = df[(field, term)] = searcher.doc_freq(field, term)
        return got

    # ------------------------------------------------------------------ reading

    def bm25_search(self, text: str, n: int, project: str | None = None,
                    kinds: Sequence[str] | None = None, idents: Sequence[str] = (),
                    boosts: tuple[float, float, float] = (0.3, 0.3, 1.0),
                    expansion: Sequence[tuple[str, float]] = ()) -> list[tuple[int, float]]:
        """BM25 top ``n`` for the query words ``text`` and whole ``idents``. The query is built
        from term queries (never a query parser): no syntax, no parse errors (see lexical.py)."""
        import tantivy

        title_boost, file_boost, ident_boost = boosts
        terms = list(dict.fromkeys(_analyzer().analyze(text))) if text.strip() else []
        if not terms and not idents:
            return []
        schema = self.schema
        Q, should = tantivy.Query, tantivy.Occur.Should

        def term(field: str, value: str, boost: float):
            q = Q.term_query(schema, field, value, index_option="freq")
            return (should, q if boost == 1.0 else Q.boost_query(q, boost))

        subs = []
        for t in terms:
            subs.append(term("body", t, 1.0))
            if title_boost:
                subs.append(term("title", t, title_boost))
            if file_boost:
                subs.append(term("file", t, file_boost))
        if ident_boost:
            subs.extend(term("ident", i, ident_boost) for i in idents)
        subs.extend(term("body", t, w) for t, w in expansion)  # feedback terms (already analyzed)
        if not subs:
            return []
        q = Q.boolean_query(subs)
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
        live = self._files.live([k or 0 for k in keys])
        return [(k, s) for (s, _), k, ok in zip(res, keys, live) if ok]

    def term_coverage(self, text: str) -> float | None:
        """Share of the query's IDF mass carried by words that occur in the index (en_stem terms)."""
        terms = set(_analyzer().analyze(text))
        if not terms:
            return None
        n = max(1, self._searcher.num_docs)
        have = total = 0.0
        for t in terms:
            df = max(self.doc_freq("body", t), self.doc_freq("title", t))
            idf = bm25_idf(n, df)
            total += idf
            if df:
                have += idf
        return have / total if total else None

    def query_idf(self, text: str) -> dict[str, float]:
        """IDF of each en_stem term of ``text``. A term no chunk has counts as the rarest term
        the index could have (document frequency 1): in a store of a handful of documents the
        df-0 IDF would otherwise outweigh every word the store does have."""
        n = max(1, self._searcher.num_docs)
        out = {}
        for t in dict.fromkeys(_analyzer().analyze(text)):
            out[t] = bm25_idf(n, max(1, self.doc_freq("body", t)))
        return out

    def has_term(self, term: str) -> bool:
        return self.doc_freq("body", term) > 0

    def has_ident(self, ident: str) -> bool:
        """Does a chunk hold this whole compound identifier (``lexical.identifiers``)?"""
        return self.doc_freq("ident", ident) > 0

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
                mat = self.vectors_of(keys)
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
        # The project's own graph when there is one; otherwise the whole graph, over-fetched so that
        # enough hits survive the filter (they are all checked against the filter either way).
        graph = self.parts.get(project) if project is not None else None
        if graph is not None and len(graph):
            searched = len(graph)
            project_checked = True
        else:
            graph, searched, project_checked = self.vectors, len(self.keymap), project is None
        kinds_checked = not kinds
        want = n if searched <= eligible else min(searched, OVERSAMPLE_MAX, int(n * searched / eligible * 1.5) + 8)
        m = graph.search(np.asarray(qvec, dtype=np.float32), max(want, n), threads=1)
        keymap = self.keymap
        if project_checked and kinds_checked:
            found = m.keys.tolist()
            return [(k, 1.0 - d) for k, d, ok in zip(found, m.distances.tolist(), self._files.live(found)) if ok][:n]
        out = []
        for key, dist in zip(m.keys.tolist(), m.distances.tolist()):
            info = keymap.get(key)
            if info is None or (project is not None and info[1] != project) or (kinds and info[2] not in kinds):
                continue
            out.append((key, 1.0 - dist))
            if len(out) >= n:
                break
        return out

    def files_of(self, keys: Sequence[int]) -> list[int]:
        """An id of each chunk's file (0: not in the index), for grouping hits by file."""
        return self._files.ids(keys)

    def similarities(self, qvec, keys: Sequence[int]):
        """Cosine similarity of the query to the given chunks (for fusing BM25-only candidates)."""
        import numpy as np

        if self.vectors is None or not keys:
            return {}
        mat = self.vectors_of(keys)
        sims = np.einsum("ij,j->i", mat, np.asarray(qvec, dtype=np.float32))
        return dict(zip(keys, sims.tolist()))

    def vectors_of(self, keys: Sequence[int]):
        """The stored vectors of ``keys`` as float32 rows. usearch's ``get`` converts each f16
        vector to f32 one by one and wraps each in Python (~5 us a key); the compiled lookup in the
        stored f16 and one numpy conversion give the same values for ~1 us a key."""
        import numpy as np
        from usearch.index import ScalarKind

        arr = np.asarray(keys, dtype=np.uint64)
        index = self.vectors
        compiled = getattr(index, "_compiled", None)  # usearch's own internals: fall back if they move
        if compiled is not None and index.dtype == ScalarKind.F16 and len(arr):
            rows = compiled.get_many(arr, ScalarKind.F16)
            if all(r is not None for r in rows):
                return np.concatenate(rows).view(np.float16).astype(np.float32).reshape(len(arr), -1)
        return np.asarray(index.get(arr), dtype=np.float32).reshape(len(arr), -1)

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


class _FileTable:
    """key -> file id in a numpy array. The hot path asks this for dozens of keys per search;
    the same lookups in the keymap dict (100k entries, cold in cache) cost ~1 us per key."""

    def __init__(self, capacity: int):
        import numpy as np

        self._ids: dict[str, int] = {}
        self.of = np.zeros(max(1024, capacity), dtype=np.int32)  # 0: not in the index (keys start at 1)

    def set(self, keys: list[int], paths: list[str]) -> None:
        import numpy as np

        if not keys:
            return
        top = max(keys)
        if top >= len(self.of):
            grown = np.zeros(max(top + 1, 2 * len(self.of)), dtype=np.int32)
            grown[:len(self.of)] = self.of
            self.of = grown
        ids = self._ids
        self.of[np.asarray(keys, dtype=np.int64)] = [ids.setdefault(p, len(ids) + 1) for p in paths]

    def clear(self, keys: list[int]) -> None:
        import numpy as np

        if keys:
            self.of[np.asarray(keys, dtype=np.int64)] = 0

    def ids(self, keys: Sequence[int]) -> list[int]:
        import numpy as np

        arr = np.asarray(keys, dtype=np.int64)
        of = self.of
        arr[(arr < 0) | (arr >= len(of))] = 0
        return of[arr].tolist()

    def live(self, keys: Sequence[int]) -> list[bool]:
        return [i != 0 for i in self.ids(keys)]


def _group(path: str, kind: str, cid: str) -> str:
    """What same-file damping groups by: the file, except that each trusted-state entry stands
    alone (all of a project's state is one file, but its entries are independent facts)."""
    return cid if kind == "state" else path


def _save(index, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    index.save(str(tmp))
    os.replace(tmp, path)


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
