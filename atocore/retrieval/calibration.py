"""The stay-empty line of one store, calibrated on the store's own text (docs/retrieval.md).

``context.build`` leaves a supplement empty when ``coverage + 1.5 x known`` (``Retriever.
match_evidence``) is below a line. A fixed line does not transfer between corpora: how much of a
new prompt's information a store knows depends on how much of a language the store's text
covers, and that differs by store (a few notes know few words; four projects' documentation
knows most of technical English).

So the store measures it on itself. Pseudo-queries are made from its own chunks (a sentence of
a chunk, its content words), and each is scored *as if its file were not in the store*: the
document frequencies of its terms without that file's chunks (``known``), and the best of the
top BM25 hits from other files (``coverage``). That is how a prompt looks that is about the
store's subject but whose words were not taken from the passage that answers it: the lower
tail of these scores is where the store's own vocabulary stops covering text on its own topic.
The line is a low quantile of them (``QUANTILE``). Nothing of it is fitted on questions.

Computed once per index generation and chunk count (in a background thread when the service
asks; ``wait=True`` for the CLI and the benches), written beside the generation as
``stay-empty.json`` so a restart does not recompute it. BM25 only: the line is the same with or
without an embedding model.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from collections import Counter
from typing import Any

from ..text import STOP_WORDS

KNOWN_WEIGHT = 1.5  # the decision's score is coverage + KNOWN_WEIGHT x known (context.build)
QUANTILE = 0.05     # the share of the store's own pseudo-queries the line may fall below
SAMPLES = 1000      # pseudo-queries per calibration (chunks sampled, one sentence each)
MIN_CHUNKS = 200    # fewer chunks: too little text to calibrate on (the fixed line is used)
MIN_FILES = 20      # leaving one file out needs others to answer from
WINDOW = 10         # words of a sentence a pseudo-query takes (a prompt's length)
HITS = 5            # the top hits whose best coverage counts, as in match_evidence
COPIES = 10         # more hits looked at for verbatim copies of the passage in other files
STALE = 0.1         # recalibrate when the chunk count moved by more than this share
FILE_NAME = "stay-empty.json"
VERSION = 1

_SENT = re.compile(r"[^.!?\n]+")
_ALPHA = re.compile(r"[A-Za-z][A-Za-z'-]*\Z")


def _pseudo_query(rng: random.Random, text: str) -> tuple[str, str] | None:
    """A window of one sentence of ``text``: its content words (a prompt's words), and the window
    as written (to recognise a verbatim copy of the passage in another file)."""
    sents = [s.split() for s in _SENT.findall(text)]
    sents = [s for s in sents if sum(1 for w in s if w.isalpha()) >= 6]
    if not sents:
        return None
    s = rng.choice(sents)
    start = rng.randrange(0, max(1, len(s) - WINDOW))
    window = s[start:start + WINDOW]
    content = [w for w in window if _ALPHA.match(w) and w.lower() not in STOP_WORDS]
    return (" ".join(content), " ".join(window)) if len(content) >= 2 else None


def _file_counts(gen: Any, path: str, terms: list[str], cache: dict) -> Counter:
    """How many chunks of the file ``path`` hold each of ``terms`` (the body field, as
    ``doc_freq``), and under ``""`` how many chunks the file has: tantivy counts, no text read."""
    import tantivy

    Q, must = tantivy.Query, tantivy.Occur.Must
    searcher = gen._searcher
    out: Counter = Counter()
    for t in ["", *terms]:
        key = (path, t)
        if key not in cache:
            in_path = Q.term_query(gen.schema, "path", path)
            q = in_path if not t else Q.boolean_query([(must, in_path), (must, Q.term_query(gen.schema, "body", t))])
            cache[key] = searcher.search(q, 1, count=True).count
        out[t] = cache[key]
    return out


def _terms_of(gen: Any, key: int, an: Any, cache: dict) -> tuple[frozenset, str]:
    """A chunk's en_stem terms and its text with runs of white space made one space (cached)."""
    got = cache.get(key)
    if got is None:
        r = gen.fetch([key]).get(key)
        body = (r[6] or "") if r else ""
        got = cache[key] = (frozenset(an.analyze(f"{(r[5] or '') if r else ''}\n{body}")), " ".join(body.split()))
    return got


def pseudo_scores(gen: Any, samples: int = SAMPLES, seed: int = 0) -> list[float]:
    """``coverage + 1.5 x known`` of ``samples`` pseudo-queries, each with its own file left out."""
    from .index import _analyzer, bm25_idf

    an = _analyzer()
    searcher = gen._searcher
    n = max(1, searcher.num_docs)
    with gen._sql_lock:
        keys = [k for (k,) in gen.db.execute("SELECT key FROM chunks WHERE kind = 'chunk' ORDER BY key")]
    rng = random.Random(seed)
    picked = rng.sample(keys, min(samples, len(keys)))
    rows = gen.fetch(picked)
    scores: list[float] = []
    counts: dict[tuple[str, str], int] = {}  # (path, term) -> chunks of that file holding the term
    seen: dict[int, tuple[frozenset, str]] = {}  # hit key -> its terms and flattened text
    for key in picked:
        row = rows.get(key)
        if row is None:
            continue
        path, text = row[7], row[6] or ""
        made = _pseudo_query(random.Random(key * 7919 + seed), text)
        if made is None:
            continue
        q, window = made
        terms = list(dict.fromkeys(an.analyze(q)))
        if not terms:
            continue
        # the file's own chunks holding each term: its document frequency without the file
        in_file = _file_counts(gen, path, terms, counts)
        hits = gen.bm25_search(q, HITS + COPIES + min(in_file[""], 50), None, None, (), (0.3, 0.3, 0.0))
        others: list[frozenset] = []
        copied = False
        for k, _ in hits:
            if gen.keymap.get(k, ("",))[0] == path:
                continue
            have, flat = _terms_of(gen, k, an, seen)
            if window in flat:
                copied = True
                break
            if len(others) < HITS:
                others.append(have)
        if copied:  # the same passage in another file (a copied or versioned doc): it says nothing
            continue  # about text the store does not have, so it is not a sample
        df = {t: searcher.doc_freq("body", t) - in_file[t] for t in terms}
        # as Generation.query_idf: an unknown term counts as a term of one chunk
        idf = {t: bm25_idf(n, max(1, d)) for t, d in df.items()}
        total = sum(idf.values())
        if not total:
            continue
        known = sum(v for t, v in idf.items() if df[t] > 0) / total
        best = max((sum(v for t, v in idf.items() if t in have) / total for have in others), default=0.0)
        scores.append(best + KNOWN_WEIGHT * known)
    return scores


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values``, linearly interpolated."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def compute_line(gen: Any) -> dict | None:
    """The calibration record of ``gen`` (line, chunk count, sample size), or None when the store
    is too small to calibrate on."""
    with gen._sql_lock:
        chunks, files = gen.db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT path) FROM chunks WHERE kind = 'chunk'").fetchone()
    if chunks < MIN_CHUNKS or files < MIN_FILES:
        return {"version": VERSION, "chunks": chunks, "line": None, "samples": 0,
                "why": f"too small to calibrate ({chunks} chunks in {files} files)"}
    scores = pseudo_scores(gen, seed=chunks)
    if len(scores) < SAMPLES // 4:
        return {"version": VERSION, "chunks": chunks, "line": None, "samples": len(scores),
                "why": "too few sentences to calibrate on"}
    return {"version": VERSION, "chunks": chunks, "line": round(quantile(scores, QUANTILE), 4),
            "samples": len(scores), "quantile": QUANTILE}


class Calibrations:
    """The calibration record of each generation a retriever serves: read from the generation's
    folder, else computed (in a background thread unless asked to wait) and written there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, dict] = {}
        self._running: set[int] = set()

    def get(self, gen: Any, wait: bool = False) -> dict | None:
        """The record for ``gen`` if there is a fresh one; otherwise start computing it (and, with
        ``wait``, return it when done). A stale record is returned while the new one is computed."""
        key = str(gen.folder)
        with self._lock:
            rec = self._records.get(key)
        if rec is None:
            rec = self._read(gen)
            if rec is not None:
                with self._lock:
                    self._records[key] = rec
        if rec is not None and not self._stale(gen, rec):
            return rec
        if wait:
            self._run(gen)
            with self._lock:
                return self._records.get(key)
        with self._lock:
            if key in self._running:
                return rec
            self._running.add(key)
        threading.Thread(target=self._run, args=(gen, True), daemon=True, name="atocore-calibrate").start()
        return rec

    @staticmethod
    def _stale(gen: Any, rec: dict) -> bool:
        chunks = sum(c for (_, kd), c in list(gen.groups.items()) if kd == "chunk")
        return abs(chunks - int(rec.get("chunks", 0))) > STALE * max(chunks, 1)

    def _run(self, gen: Any, background: bool = False) -> None:
        key = str(gen.folder)
        try:
            # no read lock held: the searcher and the chunk table are read as they are (an
            # update meanwhile moves the figures by a sample or two), and an update never waits
            rec = compute_line(gen)
            with self._lock:
                if len(self._records) > 8:
                    self._records.clear()
                self._records[key] = rec
            self._write(gen, rec)
        except Exception:  # a generation closed under us (swapped out): the fixed line serves
            pass
        finally:
            if background:
                with self._lock:
                    self._running.discard(key)

    @staticmethod
    def _read(gen: Any) -> dict | None:
        try:
            rec = json.loads((gen.folder / FILE_NAME).read_text())
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and rec.get("version") == VERSION else None

    @staticmethod
    def _write(gen: Any, rec: dict) -> None:
        path = gen.folder / FILE_NAME
        if not (gen.folder / "meta.json").is_file():  # the generation was removed meanwhile
            return
        tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(rec))
            os.replace(tmp, path)
        except OSError:  # a read-only index folder: kept in memory only
            try:
                tmp.unlink()
            except OSError:
                pass


CALIBRATIONS = Calibrations()
