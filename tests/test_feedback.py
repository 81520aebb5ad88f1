"""Pseudo-relevance feedback for one-word queries (``FusionParams.feedback_words``): RM3 on the
BM25 leg and a Rocchio step on the query vector, both from the BM25 leg's top hits. One word
names the topic; the documents about it also share the words the query did not say.

Real store, real tantivy and usearch indexes, the real model2vec model.
"""

from __future__ import annotations

import numpy as np
import pytest

from atocore.retrieval import Retriever
from atocore.retrieval.fusion import FusionParams
from atocore.retrieval.retriever import _rocchio

FILES = {
    "fructose.md": "# Fructose\n\nFructose is a sugar the liver turns into fat: it raises triglycerides and uric acid.\n",
    "juice.md": "# Fruit juice\n\nJuice is mostly fructose. Fructose loads the liver, and uric acid and triglycerides rise.\n",
    "syrup.md": "# Corn syrup\n\nHigh-fructose syrup, like table sugar, ends in the liver; uric acid follows.\n",
    # about the same thing without the query's word: only feedback can find it for "fructose"
    "gout.md": "# Gout\n\nUric acid crystals in the joints. The liver makes more uric acid and triglycerides "
               "after sweet drinks.\n",
    "bread.md": "# Bread\n\nYeast dough rises in a warm kitchen; bake at a high oven temperature.\n",
    "bikes.md": "# Bicycles\n\nOil the chain, pump the tyres and check the brake pads every month.\n",
    "garden.md": "# Garden\n\nWater the tomatoes in the morning and mulch the beds against weeds.\n",
}


def _seed(store) -> None:
    store.commit({f"sources/diet/{p}": t.encode() for p, t in FILES.items()}, "seed")


@pytest.fixture
def degraded(store, monkeypatch, tmp_path):
    _seed(store)
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", str(tmp_path / "no-such-model"))
    r = Retriever(store)
    assert r.status()["degraded"] is True
    return r


@pytest.fixture
def with_model(store):
    _seed(store)
    r = Retriever(store)
    r.update()
    assert r.status()["degraded"] is False
    return r


def _sources(hits) -> list[str]:
    return [h.source for h in hits]


def test_a_one_word_query_finds_the_topic_beyond_its_word(degraded):
    # RM3: the top hits for "fructose" all speak of the liver, uric acid and triglycerides
    with_feedback = _sources(degraded.search("fructose", k=10))
    without = _sources(degraded.search("fructose", k=10, fusion=FusionParams(feedback_words=0)))
    assert "gout.md" not in without
    assert "gout.md" in with_feedback
    assert with_feedback.index("gout.md") > with_feedback.index("fructose.md")  # the word's own documents first
    assert not {"bread.md", "bikes.md", "garden.md"} & set(with_feedback)


@pytest.mark.parametrize("query", ["fructose liver", "the liver and fructose", "high-fructose"])
def test_longer_queries_and_identifiers_get_no_feedback(degraded, query):
    on = [(h.id, round(h.score, 6)) for h in degraded.search(query, k=10)]
    off = [(h.id, round(h.score, 6)) for h in degraded.search(query, k=10, fusion=FusionParams(feedback_words=0))]
    assert on == off


def test_feedback_with_the_model_keeps_the_words_documents_first(with_model):
    hits = _sources(with_model.search("fructose", k=10))
    assert "gout.md" in hits
    assert set(hits[:3]) == {"fructose.md", "juice.md", "syrup.md"}


def test_rocchio_moves_the_query_vector_towards_the_top_hits(with_model):
    r = with_model
    gen = r._fresh()
    q = np.asarray(r._embedder.encode_query("fructose"), dtype=np.float32)
    bm = gen.bm25_search("fructose", 10)
    assert len(bm) >= 3
    mats = np.asarray([gen.vectors.get(np.asarray([k], dtype=np.uint64))[0] for k, _ in bm], dtype=np.float32)
    mean = mats.mean(axis=0)
    mean /= np.linalg.norm(mean)
    q2 = _rocchio(gen, q, bm, 2.0)
    assert abs(float(np.linalg.norm(q2)) - 1.0) < 1e-5
    assert float(q2 @ mean) > float(q @ mean) + 0.05
    # keys without a vector (a chunk not embedded yet) leave the query as it was
    assert _rocchio(gen, q, [(987654321, 1.0)], 2.0) is q
