"""Ranking metrics shared by ``atocore eval`` and the quality suite in ``bench/quality``.

Everything is document-level: a ranking is a list of document ids (best first, each at most
once: ``documents`` keeps the first hit of each), judgements map a document id to a grade
(> 0 means relevant). Definitions follow trec_eval, the convention of the BEIR figures:

- nDCG@k: DCG with linear gain ``grade / log2(rank + 1)``, divided by the DCG of the ideal
  ordering of *all* judged documents (not only those retrieved).
- Recall@k: relevant documents in the top k / relevant documents judged.
- MRR@k: 1 / rank of the first relevant document in the top k (0 if none).

A question without relevant documents has no score (``None``); callers leave it out of means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

K = 10


def documents(ids: Iterable[str]) -> list[str]:
    """The ranking of documents from a ranking of hits: each document once, at its best hit."""
    return list(dict.fromkeys(ids))


def ndcg(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float | None:
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    if not ideal:
        return None
    dcg = sum(grades.get(d, 0) / math.log2(r + 2) for r, d in enumerate(ranked[:k]) if grades.get(d, 0) > 0)
    return dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal))


def recall(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float | None:
    relevant = {d for d, g in grades.items() if g > 0}
    if not relevant:
        return None
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> float | None:
    if not any(g > 0 for g in grades.values()):
        return None
    for r, d in enumerate(ranked[:k]):
        if grades.get(d, 0) > 0:
            return 1.0 / (r + 1)
    return 0.0


@dataclass
class Scores:
    ndcg: float
    recall: float
    mrr: float

    def to_dict(self) -> dict[str, float]:
        return {"ndcg@10": round(self.ndcg, 4), "recall@10": round(self.recall, 4), "mrr@10": round(self.mrr, 4)}


def score(ranked: Sequence[str], grades: Mapping[str, int], k: int = K) -> Scores | None:
    """All three metrics of one question, or None when it has no relevant document."""
    n = ndcg(ranked, grades, k)
    if n is None:
        return None
    return Scores(n, recall(ranked, grades, k) or 0.0, mrr(ranked, grades, k) or 0.0)


def mean(scores: Iterable[Scores | None]) -> Scores | None:
    """The mean over the questions that have a score (None if none has)."""
    got = [s for s in scores if s is not None]
    if not got:
        return None
    return Scores(sum(s.ndcg for s in got) / len(got), sum(s.recall for s in got) / len(got),
                  sum(s.mrr for s in got) / len(got))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(q / 100 * len(v)) - 1))]


__all__ = ["K", "Scores", "documents", "mean", "mrr", "ndcg", "percentile", "recall", "score"]
