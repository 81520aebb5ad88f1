"""Building an index generation from the store: read, chunk, embed, and fill BM25, SQLite and HNSW.

The Retriever (retriever.py) decides when to rebuild or update; this module does the work of a
full build (``build_into``) and holds the chunking helpers both paths share.
"""

from __future__ import annotations

import queue
import threading
import time

from ..errors import ValidationError
from .chunking import Chunk, Skip, chunks_for_file
from .embedder import Embedder
from .index import Generation, GraphBuilder

EMBED_BATCH = 2048
GRAPH_PROCESS_MIN_FILES = 800  # rebuilds of at least this many files build the HNSW graph in a child process


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
