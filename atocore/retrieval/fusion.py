"""Fusing BM25 and vector candidates into one ranking.

The choice of method and weights is measured on the dev set in ``bench/devset`` by
``bench/eval_retrieval.py``; ``docs/retrieval.md`` has the table. Methods:

- ``rrf``: reciprocal rank fusion, ``sum w / (c + rank)``.
- ``norm``: score-normalised weighted sum. BM25 scores are divided by the best BM25 score of
  the query; cosine similarities are mapped linearly so that the best candidate is 1 and
  ``sim_floor`` is 0. Every BM25 candidate also gets its exact cosine (the vectors are at hand),
  so a chunk is never penalised for falling just outside the vector top-N.
- ``bm25`` / ``vector``: one side alone (for measurement, and degraded mode).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Hashable, Mapping, Sequence


@dataclass(frozen=True)
class FusionParams:
    method: str = "norm"
    n: int = 50  # candidates from each side
    w_bm25: float = 0.7
    w_vec: float = 0.3
    rrf_c: float = 60.0
    sim_floor: float = 0.2  # cosine at or below which the vector side contributes nothing
    adaptive: bool = True  # lean on vectors when BM25 knows few of the query's words
    adaptive_min: float = 0.15  # BM25's share when none of the query's words is in the index
    same_file_decay: float = 0.85  # hits from one file beyond the first ``same_file_free``: x0.85, x0.72, ...
    same_file_free: int = 1  # measured on both dev sets: docs/retrieval.md
    prefer_boost: float = 0.15  # relative boost for hits in the preferred project
    title_boost: float = 0.3  # BM25 field weights (index.bm25_search): heading path (also in body),
    file_boost: float = 0.3  # words of the file's path,
    ident_boost: float = 1.0  # whole identifiers (lexical.py)
    agree_at: float = 0.5  # >0: the vector weight scales with the legs' top-10 overlap, full at this share
    ident_vec: float = 0.0  # vector weight x this when the query holds a code identifier (lexical.code_identifiers)
    vec_new: bool = True  # may the vector side add candidates BM25 did not find (False: it only re-ranks)
    # Pseudo-relevance feedback for a query of at most ``feedback_words`` content words and no compound
    # identifier: one word tells BM25 the topic but not which of its documents are about it; the BM25
    # leg's top hits do (NFCorpus +0.019 nDCG@10; the other sets have no such query: docs/retrieval.md)
    feedback_words: int = 1  # 0: never
    rm3_docs: int = 10  # RM3 on the BM25 leg from its top hits (0: off); Anserini's defaults 10 / 10 / 0.5
    rm3_terms: int = 10
    rm3_weight: float = 0.5  # the expansion terms' share of the query's weight
    rm3_flat: float = 0.0  # >0: RM3 for longer queries too when the 10th BM25 score is >= this share of the
    # first (no hit stands out); off: at 0.85, +0.007 on NFCorpus only, for ~+0.6 ms on half the searches
    rocchio_docs: int = 10  # the query vector moves towards the mean vector of the BM25 leg's top hits (0: off)
    rocchio_beta: float = 2.0  # q + beta * unit mean, renormalised
    prf_docs: int = 0  # (measured, not used) every query's vector moved towards the top fused hits
    prf_beta: float = 0.5

    def with_(self, **kw) -> "FusionParams":
        return replace(self, **kw)


DEFAULT = FusionParams()


def fuse(bm25: Sequence[tuple[int, float]], vec: Sequence[tuple[int, float]],
         sims: Mapping[int, float] | None, p: FusionParams = DEFAULT,
         bm25_weight: float | None = None) -> list[tuple[int, float]]:
    """Fused (key, score), best first. ``sims``: exact cosines for BM25 candidates."""
    if p.method == "bm25" or not vec:
        top = bm25[0][1] if bm25 else 1.0
        return [(k, s / top) for k, s in bm25]
    if p.method == "vector" or not bm25:
        return [(k, s) for k, s in vec]
    wb = p.w_bm25 if bm25_weight is None else bm25_weight
    wv = (p.w_bm25 + p.w_vec) - wb
    if p.agree_at > 0:
        # the vector side earns its weight by agreeing with BM25 on this query: a model that does not
        # know the corpus's vocabulary (it returns unrelated neighbours) then barely moves the ranking
        overlap = len({k for k, _ in bm25[:10]} & {k for k, _ in vec[:10]}) / 10
        wv *= min(1.0, overlap / p.agree_at)
    scores: dict[int, float] = {}
    if p.method == "rrf":
        for rank, (k, _) in enumerate(bm25):
            scores[k] = scores.get(k, 0.0) + wb / (p.rrf_c + rank + 1)
        for rank, (k, _) in enumerate(vec):
            scores[k] = scores.get(k, 0.0) + wv / (p.rrf_c + rank + 1)
    else:
        top_b = bm25[0][1] or 1.0
        all_sims = dict(vec)
        if sims:
            for k, s in sims.items():
                all_sims.setdefault(k, s)
        if not p.vec_new:
            all_sims = {k: all_sims[k] for k, _ in bm25 if k in all_sims}
            if not all_sims:
                return [(k, wb * s / top_b) for k, s in bm25]
        top_v = max(all_sims.values())
        span = max(top_v - p.sim_floor, 1e-6)
        for k, s in bm25:
            scores[k] = wb * (s / top_b)
        for k, s in all_sims.items():
            scores[k] = scores.get(k, 0.0) + wv * max(0.0, (s - p.sim_floor) / span)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def diversify(ranked: Sequence[tuple[int, float]], groups: Sequence[Hashable], decay: float,
              free: int = 1) -> list[tuple[int, float]]:
    """Damp repeated hits from one file so one document does not flood the top: the first
    ``free`` hits of a file (``groups[i]`` is the file of ``ranked[i]``) keep their score, each
    further one is multiplied by ``decay`` once more."""
    if decay >= 1.0:
        return list(ranked)
    seen: dict[Hashable, int] = {}
    out = []
    for (k, s), g in zip(ranked, groups):
        n = seen[g] = seen.get(g, 0) + 1
        out.append((k, s * decay ** (n - free)) if n > free else (k, s))
    out.sort(key=lambda kv: -kv[1])
    return out
