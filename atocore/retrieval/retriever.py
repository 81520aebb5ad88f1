"""The Retriever: searches the derived index, which it keeps at the store's main.

One Retriever per store per process (``open_retriever``); it is shared by the HTTP server's
threads. Searches read the current generation under a shared lock; keeping that generation at
main (incremental updates under an exclusive lock for a few milliseconds, full rebuilds on the
side, swapped in when done) is ``IndexLifecycle``'s job (lifecycle.py); the work of a full build
is in indexing.py; the search payload of the HTTP API in atocore/api.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Sequence

from ..errors import ValidationError
from .calibration import CALIBRATIONS
from .fusion import DEFAULT, FusionParams, diversify, fuse
from .hits import Hit
from .index import Generation
from .lexical import STOPWORDS, code_identifiers, query_identifiers, query_words  # noqa: F401 (STOPWORDS: re-exported)
from .lifecycle import IndexLifecycle

KINDS = ("chunk", "memory", "state")
MAX_K = 200
RM3_CANDIDATES = 6  # RM3 weighs by IDF the top 6 x rm3_terms terms of its feedback model (all: same nDCG)


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


class Retriever(IndexLifecycle):
    """Hybrid search over the index generation that ``IndexLifecycle`` keeps at main."""

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
        idents_q = query_identifiers(query)
        bm = (gen.bm25_search(text, p.n, project, kinds, idents_q,
                              (p.title_boost, p.file_boost, p.ident_boost)) if p.method != "vector" else [])
        # feedback from the BM25 leg's top hits for a one-word query (FusionParams.feedback_words)
        feedback = bool(bm) and not idents_q and len(text.split()) <= p.feedback_words
        if p.rm3_docs and bm and (feedback or (p.rm3_flat and bm[min(9, len(bm) - 1)][1] >= p.rm3_flat * bm[0][1])):
            bm = _rm3(gen, text, bm, p, project, kinds, idents_q)
        # word pieces cannot carry an identifier; the BM25 leg has it whole (docs/retrieval.md)
        idents = p.ident_vec != 1.0 and bool(bm) and bool(code_identifiers(query))
        if emb is None or p.method == "bm25" or (idents and p.ident_vec <= 0):
            return fuse(bm, [], None, p.with_(method="bm25"))
        qvec = emb.encode_query(query)
        if feedback and p.rocchio_docs:
            qvec = _rocchio(gen, qvec, bm[:p.rocchio_docs], p.rocchio_beta)
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

    def holds(self, kind: str, project: str | None) -> bool:
        """Whether the index holds any ``kind`` record of ``project`` (``None``: records of no project);
        True while there is no index yet (a search then answers for itself)."""
        gen = self._gen
        return gen is None or bool(gen.groups.get((project, kind)))

    def match_evidence(self, query: str, hits: Sequence[Hit], top: int = 5) -> dict[str, float] | None:
        """How much of the query the store can answer, from the query's en_stem terms and their IDF:

        - ``known``: the share of the query's IDF mass on terms the index has at all (an off-topic
          prompt's distinctive words are in no chunk: they carry the highest IDF);
        - ``coverage``: the largest share of that mass that one of the ``top`` hits contains;
        - ``unknown_names``: the query's words that look like names (a capital after the first
          word, an inner capital, a digit with letters: ``Kubernetes``, ``VLOOKUP``, ``useEffect``,
          ``E0597``) and that no chunk has. A prompt naming a thing the store has never seen is
          about something else; an unknown lower-case word is more often a paraphrase;
        - ``line``: this store's own stay-empty line (``calibration.py``), None until it is
          computed (it is started in the background on first use) or when the store is too small.

        None when the query has no content words or there is no index."""
        from .index import _analyzer, term_set

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
            have = term_set(f"{h.title}\n{h.text}")
            if h.kind == "chunk" and h.origin == "source":
                have = have | term_set(h.source.replace("/", " ").replace(".", " "))
            best = max(best, sum(v for t, v in idf.items() if t in have) / total)
        rec = CALIBRATIONS.get(gen)
        return {"coverage": best, "known": known, "unknown_names": _unknown_names(query, gen, an),
                "line": rec.get("line") if rec else None}

    def calibrate(self, wait: bool = True) -> dict | None:
        """This store's stay-empty calibration (``calibration.py``): computed now with ``wait``,
        else started in the background. None when there is no index."""
        gen = self._fresh()
        return None if gen is None else CALIBRATIONS.get(gen, wait=wait)


def _bm25_sims(gen: Generation, qvec, bm: list[tuple[int, float]], vec: list[tuple[int, float]]) -> dict[int, float]:
    """Exact cosines of the BM25 candidates the vector side did not return (fusion takes the
    vector side's own similarity for the others)."""
    found = {key for key, _ in vec}
    return gen.similarities(qvec, [key for key, _ in bm if key not in found])


def _rocchio(gen: Generation, qvec, top: list[tuple[int, float]], beta: float):
    """The query vector moved towards the mean vector of ``top`` (Rocchio): a static model maps a
    lay word (``fructose``, ``hiroshima``) to a vector near few of the documents about it; their
    mean is the topic as the documents write it."""
    import numpy as np

    got = gen.vectors.get(np.asarray([k for k, _ in top], dtype=np.uint64))
    rows = [v for v in got if v is not None]  # None: a chunk not embedded yet
    if not rows:
        return qvec
    fb = np.einsum("ij->j", np.asarray(rows, dtype=np.float32))  # einsum, not BLAS (see index.vector_search)
    norm = float(np.sqrt(np.einsum("i,i->", fb, fb)))
    if not norm:
        return qvec
    q2 = np.asarray(qvec, dtype=np.float32) + (beta / norm) * fb
    return q2 / (float(np.sqrt(np.einsum("i,i->", q2, q2))) or 1.0)


def _rm3(gen: Generation, text: str, bm: list[tuple[int, float]], p: FusionParams, project, kinds,
         idents) -> list[tuple[int, float]]:
    """RM3 pseudo-relevance feedback on the BM25 leg (Lavrenko & Croft; Abdul-Jaleel et al.):
    terms weighted by their share of each top hit, times the hit's normalised score, added to the
    query with ``rm3_weight`` of its mass. Only for a one-word query (``feedback_words``), or with
    ``rm3_flat`` for one whose BM25 scores are flat."""
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
        counts = Counter(an.analyze(f"{r[5]}\n{r[6]}"))
        for t in [t for t in counts if len(t) <= 2 or t in STOPWORDS or t.isdigit()]:
            del counts[t]
        n = sum(counts.values())
        if not n:
            continue
        w = s / z / n
        for t, c in counts.items():
            model[t] += w * c
    # IDF (one doc-frequency lookup each) only for the terms the hits weigh most, not for the few
    # hundred distinct words of ten long chunks
    cands = [(t, v) for t, v in model.most_common(RM3_CANDIDATES * p.rm3_terms + len(qterms)) if t not in qterms]
    idf = gen.query_idf(" ".join(t for t, _ in cands))
    scored = sorted(((t, v * idf.get(t, 0.0)) for t, v in cands), key=lambda tv: -tv[1])
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
