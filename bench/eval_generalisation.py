"""Does the shipped fusion generalise? Document-level retrieval quality on a second, third-party
dev set (bench/devset2), side by side with the first dev set (bench/devset).

    .venv/bin/python bench/eval_generalisation.py            # tables for both sets
    .venv/bin/python bench/eval_generalisation.py --sweep    # plus the fusion grid, ranked by mean

The second set's documents are the topics of the Python language reference shipped with the
interpreter (``pydoc_data.topics``, PSF licence), written at run time to ``sources/pyref/<topic>.rst``
of a throw-away store; nothing third-party is committed. Standard-library docstrings are added as
distractors, as ``eval_retrieval.py`` does (minus the few modules that restate language-reference
topics, which would be unjudged relevant documents). Both sets go through the real product path:
``init_store`` -> store commit -> ``open_retriever(store).update()`` -> ``Retriever.search(fusion=...)``.

Metrics are document-level over the 10 hits a user sees: a document counts once, at the rank of
its best chunk. nDCG@10 uses gain 2^g - 1 (a document's grade is its best label's grade);
Recall@10 is the share of grade-2 documents found. The first set's section labels are reduced
to their documents the same way.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import eval_retrieval as er  # noqa: E402  (sets ATOCORE_EMBED_MODEL / HF_HUB_OFFLINE defaults)
from eval_retrieval import CONFIGS, DEFAULT, K  # noqa: E402

from atocore.retrieval import FusionParams, open_retriever  # noqa: E402
from atocore.store import init_store  # noqa: E402

PROJECT = "pyref"
# stdlib modules whose docstrings restate language-reference topics (operators, format specs,
# context managers): as distractors they would be relevant but unjudged, so they are left out.
OVERLAPPING_DISTRACTORS = ("operator", "string", "contextlib")


@dataclass
class DocQuery:
    type: str
    text: str
    grades: dict[str, int]  # document ("project/source") -> grade


def _norm(s: str) -> str:
    return " ".join(s.split())


def pyref_topics() -> dict[str, str]:
    """topic -> text, from the running interpreter. Exact duplicates ("else" is "if") are dropped."""
    import pydoc_data.topics

    out: dict[str, str] = {}
    seen: set[str] = set()
    topics = pydoc_data.topics.topics
    # pydoc's "else" topic is the text of "if"; keep the name a reader would look for
    for name in sorted(topics, key=lambda n: (n == "else", n)):
        text = topics[name]
        if _norm(text) in seen:
            continue
        seen.add(_norm(text))
        out[name] = text
    return out


def containers(topics: dict[str, str]) -> dict[str, list[str]]:
    """topic -> the larger topics that contain its whole text (for -> compound, ...)."""
    body = {k: _norm(v.split("\n", 3)[3] if v.count("\n") >= 3 else v) for k, v in topics.items()}
    full = {k: _norm(v) for k, v in topics.items()}
    return {k: [o for o in topics if o != k and body[k] and body[k] in full[o]] for k in topics}


def load_devset2(topics: dict[str, str], path: Path = HERE / "devset2" / "queries.tsv") -> list[DocQuery]:
    inside = containers(topics)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        typ, text, rel = line.split("\t")
        grades: dict[str, int] = {}
        for item in rel.split(";"):
            name, _, g = item.strip().partition("=")
            if name not in topics:
                raise SystemExit(f"{path.name}:{n}: topic {name!r} is not in this interpreter's pydoc_data.topics")
            grade = int(g) if g else 2
            for doc, gr in [(name, grade)] + [(c, 1) for c in inside[name]]:
                key = f"{PROJECT}/{doc}.rst"
                grades[key] = max(grades.get(key, 0), gr)
        out.append(DocQuery(typ, text, grades))
    return out


def devset1_doc_queries() -> list[DocQuery]:
    out = []
    for q in er.load_queries():
        grades: dict[str, int] = {}
        for lab in q.labels:
            grades[lab.doc] = max(grades.get(lab.doc, 0), lab.grade)
        out.append(DocQuery(q.type, q.text, grades))
    return out


def build_store2(tmp: Path, distractors: bool = True):
    store, _ = init_store(tmp / "store2")
    changes = {f"sources/{PROJECT}/{name}.rst": text.encode() for name, text in pyref_topics().items()}
    if distractors:
        skip = {f"sources/stdlib/{m.replace('.', '/')}.md" for m in OVERLAPPING_DISTRACTORS}
        changes.update({p: b for p, b in er.distractor_docs().items() if p not in skip})
    store.commit(changes, "language reference topics (pydoc_data) + stdlib docstring distractors")
    return store


def doc_score(hits, grades: dict[str, int]) -> tuple[float, float]:
    """Document-level nDCG@10 and Recall@10 (grade-2 documents) over the top K hits."""
    seen: set[str] = set()
    dcg = 0.0
    for rank, h in enumerate(hits[:K]):
        doc = f"{h.project}/{h.source}"
        if doc in seen:
            continue
        seen.add(doc)
        g = grades.get(doc, 0)
        if g:
            dcg += (2 ** g - 1) / math.log2(rank + 2)
    ideal = sorted(grades.values(), reverse=True)[:K]
    idcg = sum((2 ** g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
    full = [d for d, g in grades.items() if g == 2] or list(grades)
    return dcg / idcg, sum(d in seen for d in full) / len(full)


def run(retriever, queries: list[DocQuery], p: FusionParams, chunk_labels=None) -> list[tuple[float, ...]]:
    """Per query: (doc nDCG@10, doc Recall@10[, chunk nDCG@10 as in eval_retrieval.py when chunk labels exist])."""
    out = []
    for n, q in enumerate(queries):
        hits = retriever.search(q.text, k=K, fusion=p)
        extra = (er.score(hits, chunk_labels[n].labels)[0],) if chunk_labels else ()
        out.append(doc_score(hits, q.grades) + extra)
    return out


def summary(queries: list[DocQuery], res: list[tuple[float, float]]) -> dict[str, tuple[float, float]]:
    out = {}
    for t in ("all", "kw", "para"):
        sel = [r for q, r in zip(queries, res) if t == "all" or q.type == t]
        out[t] = (sum(r[0] for r in sel) / len(sel), sum(r[1] for r in sel) / len(sel))
    return out


def table(rows: dict[str, dict[str, tuple[float, float]]]) -> str:
    lines = ["| setting | nDCG@10 | Recall@10 | nDCG@10 kw | nDCG@10 para | Recall@10 kw | Recall@10 para |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in rows.items():
        lines.append(f"| {name} | {s['all'][0]:.3f} | {s['all'][1]:.3f} | {s['kw'][0]:.3f} | {s['para'][0]:.3f} "
                     f"| {s['kw'][1]:.3f} | {s['para'][1]:.3f} |")
    return "\n".join(lines)


def paired(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> str:
    """Per-query nDCG@10 of a vs b: wins / ties / losses and a paired bootstrap of the mean gain."""
    d = [x[0] - y[0] for x, y in zip(a, b)]
    wins, losses = sum(v > 1e-9 for v in d), sum(v < -1e-9 for v in d)
    rng = random.Random(0)
    means = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(2000))
    return (f"{wins} better, {len(d) - wins - losses} same, {losses} worse; mean {sum(d) / len(d):+.3f} "
            f"(95% bootstrap {means[50]:+.3f} .. {means[1949]:+.3f})")


def sweep_configs() -> dict[str, FusionParams]:
    out: dict[str, FusionParams] = {}
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        for f in (0.0, 0.1, 0.2, 0.3):
            for ad in (True, False):
                out[f"norm {w}/{1 - w:.1f} floor {f}{' adaptive' if ad else ''}"] = DEFAULT.with_(
                    method="norm", w_bm25=w, w_vec=round(1 - w, 2), sim_floor=f, adaptive=ad)
    for w in (0.5, 0.6, 0.7, 0.8):
        out[f"rrf {w}/{1 - w:.1f}"] = DEFAULT.with_(method="rrf", w_bm25=w, w_vec=round(1 - w, 2), adaptive=False)
    for amin in (0.0, 0.3, 0.5):
        out[f"default, adaptive_min {amin}"] = DEFAULT.with_(adaptive_min=amin)
    for free in (1, 2, 3):
        for dec in (1.0, 0.85, 0.7, 0.5):
            out[f"default, same-file damping {dec} after {free}"] = DEFAULT.with_(same_file_decay=dec, same_file_free=free)
    # the two parameters that matter most, combined: same-file damping from the 2nd hit x weights x floor
    for w in (0.3, 0.4, 0.5):
        for f in (0.0, 0.1, 0.2, 0.3):
            for dec in (0.7, 0.5):
                out[f"norm {w}/{1 - w:.1f} floor {f} adaptive, damping {dec} after 1"] = DEFAULT.with_(
                    w_bm25=w, w_vec=round(1 - w, 2), sim_floor=f, same_file_decay=dec, same_file_free=1)
    for n in (20, 100):
        out[f"default, n={n} candidates"] = DEFAULT.with_(n=n)
    out["default + PRF 3 docs"] = DEFAULT.with_(prf_docs=3)
    return out


# damping from the second hit of a file, but gently: the document-level gain without the chunk-level cost
COMPROMISE = "default, same-file damping 0.85 after 1"
CANDIDATES = {COMPROMISE: DEFAULT.with_(same_file_decay=0.85, same_file_free=1),
              "default, same-file damping 0.7 after 1": DEFAULT.with_(same_file_decay=0.7, same_file_free=1)}


def compare(label: str, cand: str, configs, names: list[str], results, shipped: str) -> None:
    """A candidate against the shipped default on both sets: paired per-query nDCG@10, halves, and
    the first set's chunk-level nDCG@10 (the metric docs/retrieval.md reports)."""
    print(f"\n{label}: {cand}: {configs[cand]}")
    for n in names:
        a, b = results[n][cand], results[n][shipped]
        print(f"  vs shipped default on {n}: " + paired(a, b))
        half = [sum(x[0] - y[0] for i, (x, y) in enumerate(zip(a, b)) if i % 2 == h) / len(a) * 2 for h in (0, 1)]
        print(f"    nDCG@10 gain on the even / odd half of the queries: {half[0]:+.3f} / {half[1]:+.3f}")
    d1 = names[1]
    ch = [sum(x[2] for x in results[d1][c]) / len(results[d1][c]) for c in (cand, shipped)]
    print(f"  devset chunk-level nDCG@10 (eval_retrieval.py's metric): {ch[0]:.3f} vs shipped {ch[1]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true", help="also run the fusion grid on both sets, ranked by mean nDCG@10")
    ap.add_argument("--no-distractors", action="store_true", help="index each set's documents alone")
    args = ap.parse_args()
    topics = pyref_topics()
    sets = {"devset2 (Python language reference, third-party)": load_devset2(topics),
            "devset (first dev set, written in-house)": devset1_doc_queries()}
    configs = {**CONFIGS, **CANDIDATES}
    if args.sweep:
        configs.update({k: v for k, v in sweep_configs().items() if v not in configs.values()})
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores = {name: (build_store2 if "devset2" in name else er.build_store)(Path(tmp), not args.no_distractors)
                  for name in sets}
        for name, queries in sets.items():
            r = open_retriever(stores[name])
            info = r.update()
            print(f"## {name}: {len(queries)} queries ({sum(q.type == 'kw' for q in queries)} keyword, "
                  f"{sum(q.type == 'para' for q in queries)} paraphrase), "
                  f"{len({d for q in queries for d in q.grades})} judged documents, {info.get('chunks')} chunks\n")
            chunk = er.load_queries() if "devset2" not in name else None
            results[name] = {c: run(r, queries, p, chunk) for c, p in configs.items()}
            print(table({c: summary(queries, results[name][c]) for c in {**CONFIGS, **CANDIDATES}}))
            res = results[name]
            print()
            for other in ("BM25 alone", "vectors alone", "RRF equal (c=60)"):
                print(f"shipped default vs {other + ':':<18} " + paired(res[next(c for c in CONFIGS if c.startswith('shipped'))], res[other]))
            print()
    if args.sweep:
        names = list(sets)
        mean = {c: [sum(x[0] for x in results[n][c]) / len(results[n][c]) for n in names] for c in configs}
        print("## fusion grid, document-level nDCG@10, ranked by the mean of the two sets\n")
        print("| setting | devset2 | devset | mean | devset2 kw / para | devset kw / para | devset chunk-level |\n"
              "| --- | --- | --- | --- | --- | --- | --- |")
        split = {c: [summary(sets[n], results[n][c]) for n in names] for c in configs}
        d1 = names[1]
        for c in sorted(configs, key=lambda c: -sum(mean[c])):
            a, b = split[c]
            ch = sum(x[2] for x in results[d1][c]) / len(results[d1][c])
            print(f"| {c} | {mean[c][0]:.3f} | {mean[c][1]:.3f} | {sum(mean[c]) / 2:.3f} | {a['kw'][0]:.3f} / {a['para'][0]:.3f} "
                  f"| {b['kw'][0]:.3f} / {b['para'][0]:.3f} | {ch:.3f} |")
        shipped = next(c for c in CONFIGS if c.startswith("shipped"))
        best = max(configs, key=lambda c: sum(mean[c]))
        for label, cand in (("best mean", best), ("compromise (keeps the chunk-level score)", COMPROMISE)):
            compare(label, cand, configs, names, results, shipped)


if __name__ == "__main__":
    main()
