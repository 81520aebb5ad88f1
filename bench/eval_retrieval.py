"""Measure retrieval quality on the labelled dev set in bench/devset.

    .venv/bin/python bench/eval_retrieval.py            # the table in docs/retrieval.md
    .venv/bin/python bench/eval_retrieval.py --sweep    # plus the weight / floor sweep

Builds a throw-away store from bench/devset/docs (one project per folder), indexes it with the
real Retriever and model (ATOCORE_EMBED_MODEL, default ../shared/models/m2v-minilm-l6-256), and
runs every query of bench/devset/queries.tsv through several fusion settings. Relevance is
judged per chunk: a label ``doc::Section`` matches a chunk of that document whose heading path
ends with the section; ``doc::~text`` matches a chunk of that document containing the text.
Grades: 2 unless written ``=1``. nDCG@10 uses gain 2^g - 1; Recall@10 counts labels found.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ATOCORE_EMBED_MODEL", str(ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from atocore.retrieval import FusionParams, open_retriever  # noqa: E402
from atocore.retrieval.fusion import DEFAULT  # noqa: E402
from atocore.store import init_store  # noqa: E402

K = 10


@dataclass
class Label:
    doc: str
    section: str | None
    contains: str | None
    grade: int


@dataclass
class Query:
    type: str
    text: str
    labels: list[Label]


def load_queries(path: Path = HERE / "devset" / "queries.tsv") -> list[Query]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        typ, text, rel = line.split("\t")
        labels = []
        for item in rel.split(";"):
            grade = 2
            if "=" in item.rsplit("::", 1)[1]:
                item, g = item.rsplit("=", 1)
                grade = int(g)
            doc, sec = item.split("::", 1)
            labels.append(Label(doc, None if sec.startswith("~") else sec, sec[1:] if sec.startswith("~") else None, grade))
        out.append(Query(typ, text, labels))
    return out


DISTRACTOR_MODULES = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "concurrent.futures", "configparser",
    "contextlib", "csv", "dataclasses", "datetime", "decimal", "difflib", "email", "enum", "fractions",
    "functools", "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "imaplib", "inspect", "io",
    "ipaddress", "itertools", "json", "logging", "lzma", "mailbox", "math", "mimetypes", "multiprocessing",
    "netrc", "operator", "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "sqlite3", "ssl", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "time", "tokenize",
    "traceback", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "wave", "weakref",
    "xml.dom.minidom", "zipfile", "zlib",
)


def distractor_docs() -> dict[str, bytes]:
    """Real technical prose that is not about the dev-set topics: the docstrings of the Python
    standard library (PSF licence), one markdown document per module, generated at run time so
    nothing third-party is committed. They make the ranking task harder and more realistic."""
    import importlib
    import inspect

    out = {}
    for name in DISTRACTOR_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        parts = [f"# {name}\n\n{inspect.getdoc(mod) or ''}\n"]
        for attr in sorted(dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
                continue
            doc = inspect.getdoc(obj)
            if doc and len(doc) > 120 and getattr(obj, "__module__", "") == mod.__name__:
                parts.append(f"## {attr}\n\n{doc}\n")
        out[f"sources/stdlib/{name.replace('.', '/')}.md"] = "\n".join(parts).encode()
    return out


def build_store(tmp: Path, distractors: bool = True):
    store, _ = init_store(tmp / "store")
    docs = HERE / "devset" / "docs"
    changes = {f"sources/{p.relative_to(docs).as_posix()}": p.read_bytes() for p in sorted(docs.rglob("*")) if p.is_file()}
    if distractors:
        changes.update(distractor_docs())
    store.commit(changes, "dev set documents")
    return store


def label_of(hit, labels: list[Label]) -> int | None:
    doc = f"{hit.project}/{hit.source}"
    for i, lab in enumerate(labels):
        if lab.doc != doc:
            continue
        if lab.section is not None and hit.title.split(" > ")[-1] == lab.section:
            return i
        if lab.contains is not None and lab.contains.lower() in hit.text.lower():
            return i
    return None


def score(hits, labels: list[Label]) -> tuple[float, float]:
    found: set[int] = set()
    dcg = 0.0
    for rank, h in enumerate(hits[:K]):
        i = label_of(h, labels)
        if i is None or i in found:
            continue
        found.add(i)
        dcg += (2 ** labels[i].grade - 1) / math.log2(rank + 2)
    ideal = sorted((lab.grade for lab in labels), reverse=True)
    idcg = sum((2 ** g - 1) / math.log2(r + 2) for r, g in enumerate(ideal[:K]))
    return dcg / idcg, len(found) / len(labels)


CONFIGS: dict[str, FusionParams] = {
    "BM25 alone": DEFAULT.with_(method="bm25"),
    "vectors alone": DEFAULT.with_(method="vector"),
    "RRF equal (c=60)": DEFAULT.with_(method="rrf", w_bm25=0.5, w_vec=0.5),
    "RRF 0.7/0.3": DEFAULT.with_(method="rrf", w_bm25=0.7, w_vec=0.3),
    "norm 0.5/0.5 floor 0": DEFAULT.with_(method="norm", w_bm25=0.5, w_vec=0.5, sim_floor=0.0),
    "norm 0.6/0.4 floor 0.2": DEFAULT.with_(method="norm", w_bm25=0.6, w_vec=0.4, sim_floor=0.2, adaptive=False),
    "norm 0.4/0.6 floor 0.2 (no adaptive)": DEFAULT.with_(adaptive=False),
    "norm + vector PRF (3 docs)": DEFAULT.with_(prf_docs=3),
    "norm, no same-file damping": DEFAULT.with_(same_file_decay=1.0),
    "shipped default (norm 0.4/0.6 floor 0.2 adaptive, same-file damping x0.85 after 1)": DEFAULT,
}


def per_query(retriever, queries: list[Query], params: FusionParams) -> list[float]:
    return [score(retriever.search(q.text, k=K, fusion=params), q.labels)[0] for q in queries]


def paired(retriever, queries, a: FusionParams, b: FusionParams) -> str:
    """Per-query nDCG@10 of a vs b: wins / ties / losses, and a paired bootstrap of the mean gain."""
    import random

    x, y = per_query(retriever, queries, a), per_query(retriever, queries, b)
    d = [p - q for p, q in zip(x, y)]
    wins, losses = sum(v > 1e-9 for v in d), sum(v < -1e-9 for v in d)
    rng = random.Random(0)
    means = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(2000))
    return (f"{wins} better, {len(d) - wins - losses} same, {losses} worse; mean gain {sum(d) / len(d):+.3f} "
            f"(95% bootstrap interval {means[50]:+.3f} .. {means[1949]:+.3f})")


def evaluate(retriever, queries: list[Query], params: FusionParams) -> dict[str, tuple[float, float, int]]:
    sums: dict[str, list[float]] = {}
    for n, q in enumerate(queries):
        hits = retriever.search(q.text, k=K, fusion=params)
        nd, rc = score(hits, q.labels)
        for t in ("all", q.type, "odd" if n % 2 else "even"):
            s = sums.setdefault(t, [0.0, 0.0, 0])
            s[0] += nd
            s[1] += rc
            s[2] += 1
    return {t: (s[0] / s[2], s[1] / s[2], s[2]) for t, s in sums.items()}


def table(retriever, queries, configs: dict[str, FusionParams]) -> str:
    rows = ["| setting | nDCG@10 | Recall@10 | nDCG@10 keyword | nDCG@10 paraphrase | Recall@10 paraphrase "
            "| nDCG@10 even / odd half |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, p in configs.items():
        r = evaluate(retriever, queries, p)
        rows.append(f"| {name} | {r['all'][0]:.3f} | {r['all'][1]:.3f} | {r['kw'][0]:.3f} | {r['para'][0]:.3f} "
                    f"| {r['para'][1]:.3f} | {r['even'][0]:.3f} / {r['odd'][0]:.3f} |")
    return "\n".join(rows)


class TermExpansion:
    """Experiment: add the nearest corpus words (by static embedding) of each query word to the
    BM25 query with a low boost. Measured here, not shipped (see docs/retrieval.md)."""

    def __init__(self, retriever, store, per_word: int = 2, min_sim: float = 0.6, boost: float = 0.3):
        import re

        import numpy as np

        from atocore.retrieval import retriever as rmod

        self.rmod, self.orig = rmod, rmod.bm25_query_text
        text = " ".join(store.read_blob(sha).decode("utf-8", "replace") for sha in store.files("main", "sources").values())
        counts: dict[str, int] = {}
        for w in re.findall(r"[a-z][a-z-]{2,}", text.lower()):
            counts[w] = counts.get(w, 0) + 1
        self.vocab = sorted(w for w, c in counts.items() if c >= 2 and w not in rmod.STOPWORDS)
        emb = retriever._embedder
        self.emb, self.mat = emb, emb.encode(self.vocab)
        self.np, self.per_word, self.min_sim, self.boost = np, per_word, min_sim, boost

    def expand(self, query: str) -> str:
        base = self.orig(query)
        words = base.split()
        extra = []
        if words:
            sims = self.mat @ self.emb.encode(words).T
            for j, w in enumerate(words):
                for i in self.np.argsort(-sims[:, j])[: self.per_word + 1]:
                    cand = self.vocab[i]
                    if sims[i, j] >= self.min_sim and cand[:5] != w[:5] and cand not in words:
                        extra.append(f"{cand}^{self.boost}")
        return " ".join(words + extra[: 2 * len(words)])

    def __enter__(self):
        self.rmod.bm25_query_text = self.expand
        return self

    def __exit__(self, *exc):
        self.rmod.bm25_query_text = self.orig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true", help="also sweep weights and floors")
    ap.add_argument("--no-distractors", action="store_true", help="index the dev-set documents alone")
    args = ap.parse_args()
    queries = load_queries()
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp), not args.no_distractors)
        r = open_retriever(store)
        info = r.update()
        print(f"dev set: {len(queries)} queries ({sum(q.type == 'kw' for q in queries)} keyword, "
              f"{sum(q.type == 'para' for q in queries)} paraphrase), {info.get('chunks')} chunks, "
              f"model {r.status()['model_id']}\n")
        print(table(r, queries, CONFIGS))
        print()
        print("shipped default vs BM25 alone:    " + paired(r, queries, DEFAULT, CONFIGS["BM25 alone"]))
        print("shipped default vs vectors alone: " + paired(r, queries, DEFAULT, CONFIGS["vectors alone"]))
        print("shipped default vs RRF equal:     " + paired(r, queries, DEFAULT, CONFIGS["RRF equal (c=60)"]))
        with TermExpansion(r, store):
            print()
            print("query-term expansion with the static embeddings (2 neighbours per word, cosine >= 0.6, boost 0.3):")
            print(table(r, queries, {"BM25 alone + expansion": CONFIGS["BM25 alone"],
                                     "shipped default + expansion": DEFAULT}))
        if args.sweep:
            sweep = {}
            for method in ("norm", "rrf"):
                for w in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
                    floors = (0.0, 0.1, 0.2, 0.3) if method == "norm" else (0.0,)
                    for f in floors:
                        sweep[f"{method} w_bm25={w} floor={f}"] = DEFAULT.with_(method=method, w_bm25=w, w_vec=round(1 - w, 2),
                                                                                 sim_floor=f, adaptive=False)
            for w, f in ((0.5, 0.2), (0.4, 0.2), (0.6, 0.3), (0.7, 0.3)):
                base = DEFAULT.with_(method="norm", w_bm25=w, w_vec=round(1 - w, 2), sim_floor=f, adaptive=False, prf_docs=0)
                for amin in (0.0, 0.15, 0.3):
                    sweep[f"norm {w}/{1 - w:.1f} floor {f} adaptive min {amin}"] = base.with_(adaptive=True, adaptive_min=amin)
                for n, beta in ((3, 0.5), (5, 0.5), (3, 1.0)):
                    sweep[f"norm {w}/{1 - w:.1f} floor {f} PRF {n} docs beta {beta}"] = base.with_(prf_docs=n, prf_beta=beta)
                    sweep[f"norm {w}/{1 - w:.1f} floor {f} adaptive + PRF {n} docs beta {beta}"] = base.with_(adaptive=True, prf_docs=n, prf_beta=beta)
            for free in (1, 2):
                for d in (1.0, 0.9, 0.85, 0.7, 0.5):
                    sweep[f"default, same-file damping {d} after {free}"] = DEFAULT.with_(same_file_decay=d, same_file_free=free)
            print()
            print(table(r, queries, sweep))


if __name__ == "__main__":
    main()
