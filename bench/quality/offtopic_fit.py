"""Features of the stay-empty decision, per prompt, on the docs set and both dev sets (issue 9 item 6).

Dumps one JSON row per prompt that reaches ``_no_match`` (prompts naming a project never do):
set, id, off-topic or not, and candidate evidence features; ``--fit`` then fits/checks rules on
halves. Not part of the suite's table; used to choose the rule in docs/retrieval.md.

    .venv/bin/python bench/quality/offtopic_fit.py --out /tmp/feat.json [--model DIR | --no-model]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

ap = argparse.ArgumentParser()
ap.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"))
ap.add_argument("--no-model", action="store_true")
ap.add_argument("--sets", default="docs,devset,devset2")
ap.add_argument("--out", required=True)
args = ap.parse_args()
os.environ["ATOCORE_EMBED_MODEL"] = (str(Path(tempfile.gettempdir()) / "atocore-bench-no-model")
                                     if args.no_model else str(Path(args.model).resolve()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(HERE))

import atocore.context.build as cb  # noqa: E402
import run  # noqa: E402
from atocore.retrieval.index import _analyzer  # noqa: E402
from atocore.retrieval.retriever import bm25_query_text  # noqa: E402


def features(retriever, prompt: str, hits) -> dict:
    gen = retriever._gen
    s = gen._searcher
    n = max(1, s.num_docs)
    an = _analyzer()
    terms = list(dict.fromkeys(an.analyze(bm25_query_text(prompt))))
    df = {t: s.doc_freq("body", t) for t in terms}
    idf = {t: math.log(1 + (n - max(1, d) + 0.5) / (max(1, d) + 0.5)) for t, d in df.items()}
    total = sum(idf.values()) or 1.0
    haves = []
    for h in hits[:5]:
        have = set(an.analyze(f"{h.title}\n{h.text}"))
        if h.kind == "chunk" and h.origin == "source":
            have.update(an.analyze(h.source.replace("/", " ").replace(".", " ")))
        haves.append(have)
    cov = [sum(v for t, v in idf.items() if t in hv) / total for hv in haves] or [0.0]
    union = set().union(*haves) if haves else set()
    known = sum(v for t, v in idf.items() if df[t]) / total
    # "specific" terms: known, in at most 2% of chunks
    rare = {t for t in terms if 0 < df[t] <= max(1, 0.02 * n)}
    rare_in_best = max((sum(idf[t] for t in rare if t in hv) for hv in haves), default=0.0) / total
    unknown = [t for t in terms if not df[t]]
    top_proj = hits[0].project if hits else None
    top_src = (hits[0].project, hits[0].source) if hits else None
    return {"known": known, "coverage": max(cov), "cov1": cov[0], "covunion": sum(v for t, v in idf.items() if t in union) / total,
            "rare_known": sum(idf[t] for t in rare) / total, "rare_in_best": rare_in_best,
            "n_terms": len(terms), "n_unknown": len(unknown),
            "unk_share_n": len(unknown) / max(1, len(terms)),
            "agree_proj": sum(h.project == top_proj for h in hits[:5]) / max(1, len(hits[:5])),
            "agree_file": sum((h.project, h.source) == top_src for h in hits[:5]) / max(1, len(hits[:5])),
            "top_score": hits[0].score if hits else 0.0,
            "unknown": unknown}


rows: list[dict] = []
orig = cb._no_match
current: dict = {}


def recording(retriever, prompt, hits):
    out = orig(retriever, prompt, hits)
    if hits and retriever is not None and getattr(retriever, "_gen", None) is not None:
        rows.append({**current, "f": features(retriever, prompt, hits), "empty_now": out is not None})
    return out


cb._no_match = recording
with tempfile.TemporaryDirectory(prefix="atocore-offfit-", ignore_cleanup_errors=True) as tmp:
    for name in args.sets.split(","):
        d = Path(tmp) / name
        d.mkdir()
        bs = run.BUILDERS[name](d)
        for q in bs.questions:
            current = {"set": name, "id": q.id, "kind": q.kind, "off": q.kind == "offtopic", "text": q.text}
            b = cb.build_context(bs.store, bs.retriever, q.text)
        print(name, len(bs.questions), file=sys.stderr)
Path(args.out).write_text(json.dumps(rows, indent=0))
print(len(rows), "rows", file=sys.stderr)
