"""Backup benchmarks (printed figures, not a timed test).

1. Incremental push of one new commit to a local bare remote, including verification
   (target <= 300 ms), on a store of the size below.
2. Full recovery from a clone: ``init_from`` (clone every ref + check every object + rebuild
   every index) of a store with 10k memories and 100k chunks of sources (target <= 60 s).

    .venv/bin/python bench/backup.py [--memories 10000] [--chunks 100000] [--pushes 20]

The embedding model is ``$ATOCORE_EMBED_MODEL`` (default: the test model beside the project).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ATOCORE_EMBED_MODEL", str(ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from atocore.backup import push  # noqa: E402
from atocore.cli.follow import init_from  # noqa: E402  (recover, then rebuild the indexes)
from atocore.ids import new_ulid  # noqa: E402
from atocore.memories import add_memory  # noqa: E402
from atocore.records import Memory  # noqa: E402
from atocore.store import init_store  # noqa: E402

WORDS = ("mirror laser vacuum chamber pump gasket optics bench alignment interferometer table drift thermal "
         "rover gripper firmware servo sensor calibration schedule polishing lap slurry cerium oxide focus "
         "detector cryostat coldhead compressor vibration enclosure kinematic mount tracker figure error "
         "spectrometer slit grating camera exposure noise readout dark current flat field bias frame").split()
SECTIONS_PER_FILE = 50


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def build_store(path: Path, memories: int, chunks: int, rng: random.Random):
    store, _ = init_store(path)
    src = path.parent / "bench-src"
    src.mkdir()
    from atocore.projects import register_project

    register_project(store, "bench", [src], name="Bench project", approve=True)
    files: dict[str, bytes] = {}
    n_files = max(1, chunks // SECTIONS_PER_FILE)
    for f in range(n_files):
        parts = [f"# Document {f}\n"]
        for s in range(SECTIONS_PER_FILE):
            parts.append(f"\n## Section {f}.{s}\n\n{sentence(rng, 25)} {sentence(rng, 20)}\n")
        files[f"sources/bench/docs/d{f // 100:03d}/doc{f:05d}.md"] = "".join(parts).encode()
    store.commit(files, f"Stage {n_files} bench documents")
    batch: dict[str, bytes] = {}
    for i in range(memories):
        m = Memory(id=new_ulid(), type=rng.choice(["knowledge", "episodic", "preference"]),
                   text=f"{sentence(rng, 12)} (memory {i})", project="bench")
        batch[m.path] = m.dump()
    store.commit(batch, f"Add {memories} bench memories")
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--pushes", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--drill", action="store_true", help="also time `atocore drill` on the recovered store")
    args = ap.parse_args()
    rng = random.Random(6)
    tmp = Path(tempfile.mkdtemp(prefix="atocore-bench-backup-"))
    try:
        t0 = time.perf_counter()
        store = build_store(tmp / "store", args.memories, args.chunks, rng)
        size = sum(f.stat().st_size for f in (tmp / "store" / "objects").rglob("*") if f.is_file())
        print(f"store: {args.memories} memories, ~{args.chunks} source sections, "
              f"{size / 1e6:.1f} MB of objects, built in {time.perf_counter() - t0:.1f} s")

        remote = tmp / "laptop.git"
        t0 = time.perf_counter()
        rep = push(store, str(remote), create=True)
        assert rep["ok"], rep
        print(f"first full push + verify: {time.perf_counter() - t0:.2f} s "
              f"({rep['results'][0]['verify']['objects_checked']} objects verified)")

        times = []
        for i in range(args.pushes):
            add_memory(store, f"{sentence(rng, 10)} (incremental {i})", "knowledge", project="bench")
            t0 = time.perf_counter()
            rep = push(store, str(remote))
            times.append((time.perf_counter() - t0) * 1000)
            assert rep["ok"], rep
        res = rep["results"][0]
        print(f"incremental push of one new commit incl. verification (n={len(times)}): "
              f"median {statistics.median(times):.0f} ms, p90 {sorted(times)[int(len(times) * 0.9) - 1]:.0f} ms, "
              f"max {max(times):.0f} ms  [target <= 300 ms]; last verified {res['verify']['objects_checked']} "
              f"new objects in {res['verify']['ms']:.0f} ms")

        t0 = time.perf_counter()
        rec = init_from(str(remote), tmp / "recovered")
        total = time.perf_counter() - t0
        info = rec.recovery
        print(f"recovery from the bare clone: clone + object check {info['clone_seconds']:.1f} s, "
              f"index rebuild {info.get('index_seconds', float('nan')):.1f} s, total {total:.1f} s  [target <= 60 s]")
        try:
            from atocore.retrieval import open_retriever

            st = open_retriever(rec).status()
            print(f"recovered index: {st.get('counts')}")
        except Exception as exc:  # noqa: BLE001
            print(f"(index status unavailable: {exc})")
        if args.drill:
            from atocore.backup import drill

            t0 = time.perf_counter()
            rep = drill(rec)
            fails = [s["name"] for s in rep["steps"] if s["ok"] is not True]
            print(f"drill on the recovered store: {'passed' if rep['ok'] else 'FAILED ' + str(fails)} "
                  f"in {time.perf_counter() - t0:.1f} s "
                  f"(slowest step: {max(rep['steps'], key=lambda s: s['seconds'])['name']})")
        rec.repo.close()
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
