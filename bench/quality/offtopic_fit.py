"""Features of the stay-empty decision, per prompt, on the docs set and both dev sets (issue 9 item 6).

Dumps one JSON row per prompt that reaches ``_no_match`` (prompts naming a project never do):
set, id, off-topic or not, and candidate evidence features; and beside it (``<out>.pseudo.json``)
each store's own pseudo-query scores (``atocore/retrieval/calibration.py``, three samples), from
which ``offtopic_loso.py`` places the calibrated line at any quantile. Not part of the suite's
table; used to choose the rule in docs/retrieval.md.

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
from atocore.retrieval.lexical import query_identifiers  # noqa: E402


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
    # the vector leg's view (absent in degraded mode): top cosine, its lead over the top-50 mean,
    # and the overlap of the two legs' top 10 (the fusion's agreement)
    vf = {}
    emb = retriever._embedder
    if emb is not None and gen.vectors is not None:
        qvec = emb.encode_query(prompt)
        vec = gen.vector_search(qvec, 50, None, None)
        bm = gen.bm25_search(bm25_query_text(prompt), 50, None, None, query_identifiers(prompt))
        if vec:
            sims = [s for _, s in vec]
            vf = {"vec_top": sims[0], "vec_gap": sims[0] - sum(sims) / len(sims),
                  "agree10": len({k for k, _ in bm[:10]} & {k for k, _ in vec[:10]}) / 10,
                  "agree_top1": float(bool(bm) and bm[0][0] in {k for k, _ in vec[:10]})}
    if emb is not None and gen.vectors is not None:
        import numpy as np
        c = _CENT.get(id(gen))
        if c is None:
            keys = list(gen.keymap)
            mat = np.asarray(gen.vectors.get(np.asarray(keys, dtype=np.uint64)), dtype=np.float32).reshape(len(keys), -1)
            projs = [gen.keymap[k][1] for k in keys]
            cents = {}
            for pr in set(projs):
                m = mat[[i for i, x in enumerate(projs) if x == pr]]
                v = m.mean(axis=0); v /= np.linalg.norm(v)
                cs = m @ v
                cents[pr] = (v, float(cs.mean()), float(cs.std()))
            g = mat.mean(axis=0); g /= np.linalg.norm(g)
            cs = mat @ g
            c = _CENT[id(gen)] = (cents, (g, float(cs.mean()), float(cs.std())))
        cents, (g, gm, gs) = c
        q = np.asarray(qvec, dtype=np.float32)
        vf["cen_glob"] = float(q @ g)
        vf["cen_glob_z"] = (float(q @ g) - gm) / (gs or 1)
        pz = [((float(q @ v) - m) / (sd or 1), float(q @ v)) for v, m, sd in cents.values()]
        vf["cen_proj_z"] = max(z for z, _ in pz)
        vf["cen_proj"] = max(x for _, x in pz)
        # the unknown words' own closeness to the store's topic
        uw = [w for w in _WORD.findall(prompt) if an.analyze(w) and not any(gen.has_term(t) for t in an.analyze(w))]
        if uw:
            ws = [float(np.asarray(emb.encode_query(w), dtype=np.float32) @ g) for w in uw]
            vf["unk_cen_min"] = min(ws); vf["unk_cen_mean"] = sum(ws) / len(ws)
    # BM25 top score against the query's own ceiling (every term saturated, k1 1.2)
    bm0 = gen.bm25_search(bm25_query_text(prompt), 5, None, None, (), (0.0, 0.0, 0.0))
    ceiling = sum(idf.values()) * 2.2
    vf["bm_ratio"] = (bm0[0][1] / ceiling) if bm0 else 0.0
    # share of query terms (by count) in the best hit
    vf["cnt_cov"] = max((sum(1 for t in terms if t in hv) for hv in haves), default=0) / max(1, len(terms))
    from atocore.retrieval.retriever import _looks_like_name
    nm = [w for n_, w in enumerate(_WORD.findall(prompt)) if _looks_like_name(w, n_ == 0)]
    vf["names_all"] = nm
    vf["names_not_in_hits"] = [w for w in nm if an.analyze(w) and not any(all(t in hv for t in an.analyze(w)) for hv in haves)]
    ui = [i for i in query_identifiers(prompt) if s.doc_freq("ident", i) == 0]
    vf["unk_idents"] = ui
    vf["unk_idents_part"] = [i for i in ui if any(not gen.has_term(t) for t in an.analyze(i))]
    top_proj = hits[0].project if hits else None
    top_src = (hits[0].project, hits[0].source) if hits else None
    return {"known": known, "coverage": max(cov), "cov1": cov[0], "covunion": sum(v for t, v in idf.items() if t in union) / total,
            "rare_known": sum(idf[t] for t in rare) / total, "rare_in_best": rare_in_best,
            "n_terms": len(terms), "n_unknown": len(unknown),
            "unk_share_n": len(unknown) / max(1, len(terms)),
            "agree_proj": sum(h.project == top_proj for h in hits[:5]) / max(1, len(hits[:5])),
            "agree_file": sum((h.project, h.source) == top_src for h in hits[:5]) / max(1, len(hits[:5])),
            "top_score": hits[0].score if hits else 0.0,
            "unknown": unknown, "names": retriever.match_evidence(prompt, hits).get("unknown_names", []), **vf}


_CENT: dict = {}
import re
_WORD = re.compile(r"[A-Za-z0-9]+")
rows: list[dict] = []
orig = cb._no_match
current: dict = {}


def recording(retriever, prompt, hits):
    out = orig(retriever, prompt, hits)
    if hits and retriever is not None and getattr(retriever, "_gen", None) is not None:
        rows.append({**current, "f": features(retriever, prompt, hits), "empty_now": out is not None})
    return out


cb._no_match = recording
pseudo: dict[str, dict] = {}
with tempfile.TemporaryDirectory(prefix="atocore-offfit-", ignore_cleanup_errors=True) as tmp:
    for name in args.sets.split(","):
        d = Path(tmp) / name
        d.mkdir()
        bs = run.BUILDERS[name](d)
        # the store's own pseudo-query scores (calibration.py), three samples: lines at any quantile
        from atocore.retrieval import calibration as cal
        pseudo[name] = {"shipped": bs.retriever.calibrate(wait=True),
                        "scores": [cal.pseudo_scores(bs.retriever._gen, seed=seed) for seed in (1, 2, 3)]}
        for q in bs.questions:
            current = {"set": name, "id": q.id, "kind": q.kind, "off": q.kind == "offtopic", "text": q.text}
            b = cb.build_context(bs.store, bs.retriever, q.text)
        print(name, len(bs.questions), file=sys.stderr)
Path(args.out).write_text(json.dumps(rows, indent=0))
Path(args.out).with_suffix(".pseudo.json").write_text(json.dumps(pseudo))
print(len(rows), "rows", file=sys.stderr)
