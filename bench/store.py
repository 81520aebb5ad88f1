"""Store benchmark: memory writes and full reads with 10,000 memories in the store.

Prints figures (not a test). Targets (issue 2): one memory write (validated, committed, ref
updated, durable) median <= 8 ms and p99 <= 25 ms; reading every record at HEAD <= 0.6 s.

    .venv/bin/python bench/store.py [--memories 10000] [--writes 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atocore.ids import new_ulid  # noqa: E402
from atocore.memories import add_memory, list_memories, memory_history  # noqa: E402
from atocore.records import MEMORY_TYPES, memory_from_dict, now_iso  # noqa: E402
from atocore.store import Store, init_store  # noqa: E402
from atocore.store.maintain import pack, wait_idle  # noqa: E402

WORDS = ("lens mount alignment torque spec vacuum chamber laser diode firmware bracket thermal drift "
         "calibration fixture rev budget supplier deadline tolerance anodized aluminium").split()


def text(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12 + i % 20)) + f" (note {i})"


def seed(store: Store, n: int) -> None:
    """Bulk-load n memories in commits of 1,000 (seeding is not what is measured)."""
    now = now_iso()
    for start in range(0, n, 1000):
        changes = {}
        for i in range(start, min(n, start + 1000)):
            m = memory_from_dict({"id": new_ulid(), "type": MEMORY_TYPES[i % 6], "text": text(i),
                                  "project": f"p{i % 7}", "created": now, "updated": now})
            changes[m.path] = m.dump()
        store.commit(changes, f"Seed memories {start}..{start + len(changes)}")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--writes", type=int, default=400)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="atocore-bench-") as tmp:
        store, _ = init_store(Path(tmp) / "store")
        t0 = time.perf_counter()
        store.writer.durable = False  # seeding is set-up, not what is measured
        seed(store, args.memories)
        store.writer.durable = True
        print(f"seeded {args.memories} memories in {time.perf_counter() - t0:.1f} s")

        wait_idle(store.path)
        os.sync()  # flush the seeding's dirty pages now, so they are not charged to the measured writes
        store = Store(store.path)  # fresh process-like state: empty tree cache
        lat, cpu = [], []
        t_all = time.perf_counter()
        for i in range(args.writes):
            t, c = time.perf_counter(), time.process_time()
            last = add_memory(store, text(args.memories + i), MEMORY_TYPES[i % 6], project=f"p{i % 7}")
            lat.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        wall = time.perf_counter() - t_all
        print(f"memory write (validate + commit + CAS ref, fsynced): n={len(lat)}  median {statistics.median(lat):.2f} ms"
              f"  p90 {pct(lat, 90):.2f} ms  p99 {pct(lat, 99):.2f} ms  max {max(lat):.2f} ms"
              f"  -> {len(lat) / wall:.0f} commits/s   (CPU per write: median {statistics.median(cpu):.2f} ms)")
        store.strict_durability = True
        lat3 = []
        for i in range(min(100, args.writes)):
            t = time.perf_counter()
            add_memory(store, text(i), MEMORY_TYPES[i % 6])
            lat3.append((time.perf_counter() - t) * 1000)
        store.strict_durability = False
        print(f"  same with ATOCORE_FSYNC=strict (ref folder fsynced too): median {statistics.median(lat3):.2f} ms"
              f"  p99 {pct(lat3, 99):.2f} ms")
        store.writer.durable = False
        lat2 = []
        for i in range(min(100, args.writes)):
            t = time.perf_counter()
            last = add_memory(store, text(i), MEMORY_TYPES[i % 6])
            lat2.append((time.perf_counter() - t) * 1000)
        store.writer.durable = True
        print(f"  same without object fsync (for comparison only): median {statistics.median(lat2):.2f} ms"
              f"  p99 {pct(lat2, 99):.2f} ms")

        def read_all(label: str) -> None:
            # a fresh Store each time (no cached trees), best and median of 5: the machine is shared
            times = []
            for _ in range(5):
                s = Store(store.path)
                t = time.perf_counter()
                mems = list_memories(s)
                times.append((time.perf_counter() - t) * 1000)
            print(f"read + validate every memory at HEAD ({label}): {len(mems)} memories in "
                  f"best {min(times):.0f} ms, median {statistics.median(times):.0f} ms")

        read_all("objects loose")
        wait_idle(store.path)
        print(f"git repack -a -d: {pack(store.path, full=True)}")
        read_all("objects packed")
        t = time.perf_counter()
        files = Store(store.path).files("main")
        print(f"list every file at HEAD (tree walk only): {len(files)} files in {(time.perf_counter() - t) * 1000:.0f} ms")
        ncommits = len(store.log(limit=None))
        oldest = next(p for p in files if p.startswith("memories/")).split("/")[1][:-3]
        for label, mid in (("a memory written early (walks all history)", oldest), ("the newest memory (stops where it was added)", last.id)):
            t = time.perf_counter()
            hist = memory_history(Store(store.path), mid)
            print(f"history of {label}, {ncommits} commits: {len(hist)} entries in "
                  f"{(time.perf_counter() - t) * 1000:.0f} ms")

if __name__ == "__main__":
    main()
