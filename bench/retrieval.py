"""Retrieval speed and size at 10k and 100k chunks of ~800 characters (printed figures).

    .venv/bin/python bench/retrieval.py                 # 10k and 100k
    .venv/bin/python bench/retrieval.py --sizes 10000   # quicker

Text: real sentences (the dev-set documents and the Python standard library's docstrings)
recombined into markdown files of ten ~800-character sections each, spread over five projects,
with a few random part numbers and names per chunk so the vocabulary keeps growing with size.
Figures: full rebuild, index size on disk, incremental update after a one-file commit, in-process
search latency (query embedding included; no filter, and with a project filter), HNSW recall@10
against exact search, and the resident memory of a fresh process serving the index.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("ATOCORE_EMBED_MODEL", str(ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECTS = ["m1-mirror", "fringe", "polisher", "lab", "archive"]


def topic_pools() -> list[list[str]]:
    """Sentences grouped by the document they come from: one pool per topic."""
    from eval_retrieval import distractor_docs

    texts = [b.decode() for b in distractor_docs().values()]
    texts += [p.read_text() for p in sorted((HERE / "devset" / "docs").rglob("*")) if p.is_file()]
    pools = []
    for text in texts:
        text = re.sub(r"[#=\-`*>|]+", " ", text)
        sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split()))]
        sents = [s for s in sents if 30 <= len(s) <= 300]
        if len(sents) >= 8:
            pools.append(sents)
    return pools


def make_corpus(n_chunks: int, seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    pools = topic_pools()
    syll = ["ka", "ro", "mi", "zen", "tal", "vor", "ex", "lu", "pra", "dim", "qua", "sel", "nor", "bri"]
    files = {}
    per_file = 10
    for f in range(n_chunks // per_file):
        project = PROJECTS[f % len(PROJECTS)]
        # a note is about one topic, with some sentences borrowed from a second one
        pool, other = rng.choice(pools), rng.choice(pools)
        parts = [f"# Note {f}: {rng.choice(pool)[:60]}\n"]
        for s in range(per_file):
            body = []
            size = 0
            while size < 760:
                sent = rng.choice(pool if rng.random() < 0.8 else other)
                if rng.random() < 0.15:  # part numbers and coined names: a long tail of rare terms
                    sent += f" Part {rng.choice('ABCDEFGH')}{rng.randint(100, 99999)} from " \
                            f"{''.join(rng.choice(syll) for _ in range(3)).capitalize()}."
                body.append(sent)
                size += len(sent) + 1
            parts.append(f"## Section {s} {rng.choice(pool)[:40]}\n\n{' '.join(body)}\n")
        files[f"sources/{project}/notes/n{f // 100:03d}/note-{f:06d}.md"] = "\n".join(parts).encode()
    return files


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def queries() -> list[str]:
    from eval_retrieval import load_queries

    return [q.text for q in load_queries()]


def serve_probe(store_path: str) -> None:
    """Run in a fresh process: open the index, answer queries, report RSS."""
    from atocore.retrieval import open_retriever
    from atocore.store import open_store

    before = rss_mb()
    r = open_retriever(open_store(store_path))
    t = time.perf_counter()
    r.search("warm up")
    opened = time.perf_counter() - t
    qs = queries()
    for q in qs:
        r.search(q, k=10)
    gc.collect()
    gc.freeze()  # as the server does after warming up
    lat = []
    for q in qs * 3:
        t = time.perf_counter()
        r.search(q, k=10)
        lat.append(time.perf_counter() - t)
    print(json.dumps({"rss_mb": rss_mb(), "rss_before_mb": before, "open_s": opened,
                      "p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000}))


def bench(n: int, tmp: Path) -> dict:
    import numpy as np

    from atocore.retrieval import open_retriever
    from atocore.store import init_store

    out: dict = {"chunks_target": n, "load": os.getloadavg()}
    t = time.perf_counter()
    files = make_corpus(n)
    store, _ = init_store(tmp / f"store-{n}")
    store.commit(files, f"{n} chunks of synthetic notes")
    out["setup_s"] = time.perf_counter() - t
    r = open_retriever(store)
    r._progress = False
    r._get_embedder(os.environ["ATOCORE_EMBED_MODEL"])  # model load is not part of the rebuild figure
    t = time.perf_counter()
    info = r.rebuild()
    out["rebuild_s"] = time.perf_counter() - t
    st = r.status()
    out["chunks"] = st["counts"]["total"]
    out["index_mb"] = st["size_bytes"] / 1e6
    # incremental update after a commit that changes one file
    paths = sorted(files)
    rng = random.Random(1)
    inc = []
    for i in range(10):
        p = rng.choice(paths)
        text = files[p].decode().replace("## Section 3", f"## Section 3 revised {i}", 1)
        store.commit({p: text.encode()}, f"edit {p}")
        t = time.perf_counter()
        res = r.update()
        inc.append(time.perf_counter() - t)
        assert res["action"] == "incremental", res
    out["incremental_ms_median"] = statistics.median(inc) * 1000
    out["incremental_ms_max"] = max(inc) * 1000
    # search latency in-process, as the server runs it (long-lived objects frozen out of the GC)
    qs = queries()
    for q in qs:
        r.search(q)
    gc.collect()
    gc.freeze()
    rounds = []
    for _ in range(5):  # five rounds; the machine is shared, so report the median round
        lat, lat_p = [], []
        for q in qs:
            t = time.perf_counter()
            r.search(q, k=10)
            lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            r.search(q, k=10, project="fringe")
            lat_p.append(time.perf_counter() - t)
        rounds.append((pct(lat, 0.5), pct(lat, 0.99), pct(lat_p, 0.5), pct(lat_p, 0.99)))
    rounds.sort()
    med = rounds[len(rounds) // 2]
    out["search_p50_ms"], out["search_p99_ms"] = med[0] * 1000, med[1] * 1000
    out["search_project_p50_ms"], out["search_project_p99_ms"] = med[2] * 1000, med[3] * 1000
    out["search_rounds_p50_ms"] = [round(x[0] * 1000, 2) for x in rounds]
    gc.unfreeze()
    # HNSW recall@10 against exact search over the same vectors
    gen = r._gen
    keys = np.fromiter(gen.keymap.keys(), dtype=np.uint64)
    mat = np.asarray(gen.vectors.get(keys), dtype=np.float32)
    emb = r._embedder
    rec = []
    for q in qs:
        qv = emb.encode_query(q)
        exact = set(keys[np.argsort(-(mat @ qv))[:10]].tolist())
        approx = {k for k, _ in gen.vector_search(qv, 10)}
        rec.append(len(exact & approx) / 10)
    out["hnsw_recall_at_10"] = statistics.mean(rec)
    # what the approximation costs the fused ranking: top-10 of search() with HNSW vs exact vectors
    approx_top = [[h.id for h in r.search(q, k=10)] for q in qs]
    real = gen.vector_search

    def exact_search(qvec, n, project=None, kinds=None):
        sims = mat @ np.asarray(qvec, dtype=np.float32)
        top = np.argsort(-sims)[:n]
        return [(int(keys[i]), float(sims[i])) for i in top]

    gen.vector_search = exact_search
    try:
        exact_top = [[h.id for h in r.search(q, k=10)] for q in qs]
    finally:
        gen.vector_search = real
    out["fused_agreement_at_10"] = statistics.mean(len(set(a) & set(b)) / max(1, len(b))
                                                   for a, b in zip(approx_top, exact_top))
    del mat
    out["bench_process_rss_mb"] = rss_mb()
    # resident memory of a fresh process serving this index
    probe = subprocess.run([sys.executable, __file__, "--probe", str(store.path)], capture_output=True, text=True,
                           env={**os.environ}, timeout=600)
    try:
        p = json.loads(probe.stdout.strip().splitlines()[-1])
        out["serving_rss_mb"] = p["rss_mb"]
        out["serving_open_s"] = p["open_s"]
        out["serving_p50_ms"], out["serving_p99_ms"] = p["p50_ms"], p["p99_ms"]
    except Exception:
        out["serving_rss_error"] = probe.stderr[-500:]
    out["rebuild_info"] = info
    out["load"] = f"{out['load'][0]:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores, shared)"
    r._gen = None
    gc.collect()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        serve_probe(args.probe)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in args.sizes.split(",")]:
            res = bench(n, Path(tmp))
            print(f"\n== {res['chunks']} chunks (corpus + store setup {res['setup_s']:.1f} s, not timed below)")
            print(f"full rebuild:            {res['rebuild_s']:.2f} s  ({res['chunks'] / res['rebuild_s']:.0f} chunks/s)")
            print(f"index size on disk:      {res['index_mb']:.1f} MB")
            print(f"incremental (1 file):    median {res['incremental_ms_median']:.1f} ms, max {res['incremental_ms_max']:.1f} ms")
            print(f"search (no filter):      p50 {res['search_p50_ms']:.2f} ms, p99 {res['search_p99_ms']:.2f} ms "
                  f"(median of 5 rounds of {len(queries())} queries; p50 per round {res['search_rounds_p50_ms']})")
            print(f"search (project filter): p50 {res['search_project_p50_ms']:.2f} ms, p99 {res['search_project_p99_ms']:.2f} ms")
            print(f"HNSW recall@10 vs exact: {res['hnsw_recall_at_10']:.3f} (vector side alone); "
                  f"fused top-10 agreement with exact vectors: {res['fused_agreement_at_10']:.3f}")
            print(f"rebuild stage busy time: {res['rebuild_info'].get('stage_seconds')}")
            print(f"load average during run: {res['load']}")
            if "serving_rss_mb" in res:
                print(f"serving process RSS:     {res['serving_rss_mb']:.0f} MB (open + first search {res['serving_open_s']:.2f} s)")
                print(f"search in that process:  p50 {res['serving_p50_ms']:.2f} ms, p99 {res['serving_p99_ms']:.2f} ms")
            else:
                print(f"serving process RSS:     probe failed: {res.get('serving_rss_error')}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
