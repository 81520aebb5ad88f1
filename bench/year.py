"""A year of use: build a store with ~50,000 commits through the real commit path, then
measure what a person and the service do on it (issue 14). Prints one table (not a test).

The year (at ``--scale 1``): 30,000 captured turns in 3,000 sessions; 3,000 memories (half
written directly, half approved candidates) plus 8,000 rejected candidates, 600 supersedes and
300 invalidations; 600 trusted-state changes, each a ``review/*`` branch merged with
``Reviewed-by``; 250 refreshes of 4 projects of 1,000 files (~5 % churn each, each tagged as a
backup snapshot first); a daily backup tag with retention applied; 100 reviews left open.

Every write goes through the same functions the CLI and the service call (``record_interaction``,
``add_memory``, ``propose``/``approve_review``/``reject_review``, ``propose_state``,
``stage_project``, ``snapshot``). Set-up writes skip object fsync (as ``bench/store.py`` seeds)
and the background repack runs as it would in service; what is measured runs with the defaults.

The built store is cached in the temp folder, keyed by the parameters, and every run measures a
fresh copy of it, so measuring again does not rebuild (``--rebuild`` forces it).

    .venv/bin/python bench/year.py [--scale 1.0] [--rebuild] [--skip-service] [--skip-drill]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atocore.capture.record import record_interaction  # noqa: E402
from atocore.ids import new_ulid  # noqa: E402
from atocore.memories import (add_memory, invalidate_memory, list_memories, memory_history,  # noqa: E402
                              supersede_memory)
from atocore.records import MEMORY_TYPES, memory_from_dict, now_iso  # noqa: E402
from atocore.review import list_reviews, propose, reject_review  # noqa: E402
from atocore.state import propose_state, state_history  # noqa: E402
from atocore.store import Store, init_store  # noqa: E402
from atocore.store.maintain import loose_estimate, pack_count, wait_idle  # noqa: E402

BOB = "Bob Reviewer <bob@example.org>"
PROJECTS = ("optics", "firmware", "thermal", "vacuum")
WORDS = ("lens mount alignment torque spec vacuum chamber laser diode firmware bracket thermal drift "
         "calibration fixture rev budget supplier deadline tolerance anodized aluminium pump seal "
         "gasket flange encoder stepper driver heater sensor loop gain offset noise filter").split()
VERSION = "4"  # bump when the shape of the year changes (invalidates cached stores)


def letters(i: int) -> str:
    """``i`` spelled in base-26 letters (a, b, ..., z, ba, bb, ...)."""
    out = ""
    while True:
        out = chr(97 + i % 26) + out
        i //= 26
        if not i:
            return out


_POOLS: list[list[str]] = []


def words(rng: random.Random, n: int) -> str:
    """``n`` words of real text: consecutive sentences of one document (bench/retrieval.py's pools:
    the dev-set documents and the standard library's docstrings). A year's turns and notes are about
    many things in a large vocabulary; text drawn from a few dozen words (VERSION 3) made every
    query word match nearly every turn, a posting-list load no real store has."""
    if not _POOLS:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from retrieval import topic_pools

        _POOLS.extend(topic_pools())
    pool = rng.choice(_POOLS)
    i = rng.randrange(len(pool))
    out: list[str] = []
    while len(out) < n:
        out += pool[i % len(pool)].split()
        i += 1
    return " ".join(out[:n])


def plan(scale: float) -> dict[str, int]:
    def n(x: int) -> int:
        return max(1, round(x * scale))
    return {"turns": n(30_000), "sessions": n(3_000), "memories": n(1_500), "candidates_ok": n(1_500),
            "candidates_rejected": n(8_000), "supersedes": n(600), "invalidations": n(300), "state": n(600),
            "refreshes": n(250), "files": max(20, n(1_000)), "open_reviews": 100}


# --------------------------------------------------------------------------- building


def write_sources(root: Path, files: int, rng: random.Random) -> None:
    for pid in PROJECTS:
        folder = root / pid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (folder / f"doc-{i:04d}.md").write_text(f"# {pid} doc {i}\n\n{words(rng, 120)}\n")


def churn(root: Path, pid: str, files: int, rng: random.Random, day: int) -> None:
    folder = root / pid
    for i in rng.sample(range(files), max(1, files // 20)):  # ~5 % of the files change
        p = folder / f"doc-{i:04d}.md"
        if p.exists():
            with p.open("a") as f:
                f.write(f"\nDay {day}: {words(rng, 15)}\n")
    extra = folder / f"note-{day:03d}.md"  # now and then a file comes and another goes
    extra.write_text(f"# note {day}\n\n{words(rng, 40)}\n")
    old = sorted(folder.glob("note-*.md"))
    if len(old) > 5:
        old[0].unlink()


def build(base: Path, scale: float, seed: int = 14) -> dict:
    from atocore.store.snapshots import prune_snapshots, snapshot
    from atocore.projects import get_project, register_project
    from atocore.projects.refresh import stage_project

    from atocore.store.lock import file_lock
    from atocore.store.maintain import MAINTENANCE_LOCK, MAX_PACKS, needs_pack, run_policy

    p = plan(scale)
    rng = random.Random(seed)
    # The background repack waits for a 2 s pause in writing, which a builder never makes; a real
    # day has them. So the builder runs the same maintenance pass itself at the end of each day
    # when the same check would have started it.
    os.environ["ATOCORE_AUTO_PACK"] = "0"
    maintenance = {"runs": 0, "seconds": 0.0}

    def nightly(store_path: Path) -> None:
        objects = store_path / "objects"
        if needs_pack(objects) or pack_count(objects) >= MAX_PACKS:
            t = time.perf_counter()
            with file_lock(store_path / MAINTENANCE_LOCK, 3600, what="store maintenance"):
                run_policy(store_path)
            maintenance["runs"] += 1
            maintenance["seconds"] += time.perf_counter() - t

    src = base / "sources"
    write_sources(src, p["files"], rng)
    store, _ = init_store(base / "store")
    store.writer.durable = False  # set-up; what is measured later runs fsynced
    for pid in PROJECTS:
        register_project(store, pid, [str(src / pid)], approve=True, reviewer=BOB)
    (src / "archive").mkdir(exist_ok=True)
    (src / "archive" / "readme.md").write_text("# archive\n\nOld project, state set in the first weeks only.\n")
    register_project(store, "archive", [str(src / "archive")], approve=True, reviewer=BOB)
    for pid in (*PROJECTS, "archive"):
        stage_project(store, get_project(store, pid))

    ops: list[str] = []
    for kind in ("turns", "memories", "candidates_ok", "candidates_rejected", "supersedes", "invalidations",
                 "state", "refreshes"):
        ops += [kind] * p[kind]
    rng.shuffle(ops)
    # the first state changes go to "archive" (old records), 100 reviews left
    # open in the last 20 % (branches off an older main, as real ones are)
    archive_left = max(3, p["state"] // 50)  # the first state changes go to "archive", never again
    tail = range(len(ops) * 4 // 5 if len(ops) >= 5 * p["open_reviews"] else 0, len(ops))
    open_at = set(rng.sample(tail, min(p["open_reviews"], len(tail))))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    active: list[str] = []
    first = {"memory": None, "state_key": None}
    sessions = [f"s-{i:05d}" for i in range(p["sessions"])]
    per_day = max(1, len(ops) // 365, len(ops) // max(1, round(365 * min(1.0, scale * 10))))
    spent: dict[str, float] = {}
    t0 = time.perf_counter()
    last_day = -1
    for i, kind in enumerate(ops):
        t_op = time.perf_counter()
        day = i // per_day
        when = start + timedelta(days=day, seconds=i % per_day)
        if day != last_day:  # the night: maintenance as it would run; the daily backup tag, retention
            nightly(store.path)
            snapshot(store, "daily", when=when)
            last_day = day
        if i in open_at:
            if len(open_at) % 2:
                # no digits in the key: "key: open-8563" reads as a secret to the gate's detector
                propose_state(store, rng.choice(PROJECTS), f"open-{letters(i)}", words(rng, 6))
            else:
                m = memory_from_dict({"id": new_ulid(), "type": "knowledge", "text": words(rng, 25),
                                      "status": "candidate", "source": "extract", "created": now_iso(),
                                      "updated": now_iso()})
                propose(store, {m.path: m.dump()}, f"Candidate memory: {m.text[:40]}", kind="memory")
            open_at.discard(i)
        if kind == "turns":
            sid = sessions[min(len(sessions) - 1, (i * len(sessions)) // len(ops) + rng.randrange(3))]
            record_interaction(store, {"source": "claude-code", "session_id": sid, "project": rng.choice(PROJECTS),
                                       "prompt": words(rng, 40), "response": words(rng, 150),
                                       "created": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
        elif kind == "memories" or (kind in ("supersedes", "invalidations") and len(active) < 10):
            m = add_memory(store, words(rng, 25) + f" (memory {i})", MEMORY_TYPES[i % 6],
                           project=rng.choice(PROJECTS))
            active.append(m.id)
            first["memory"] = first["memory"] or m.id
        elif kind in ("candidates_ok", "candidates_rejected"):
            m = memory_from_dict({"id": new_ulid(), "type": "knowledge", "text": words(rng, 25) + f" (candidate {i})",
                                  "project": rng.choice(PROJECTS), "status": "candidate", "source": "extract",
                                  "created": now_iso(), "updated": now_iso()})
            if kind == "candidates_ok":
                propose(store, {m.path: m.dump()}, f"Candidate memory {m.id}", kind="memory", approve=True,
                        reviewer=BOB)
                active.append(m.id)
            else:
                r = propose(store, {m.path: m.dump()}, f"Candidate memory {m.id}", kind="memory")
                reject_review(store, r.id, "not worth keeping", BOB)
        elif kind == "supersedes":
            old = active.pop(rng.randrange(len(active)))
            active.append(supersede_memory(store, old, words(rng, 25) + f" (revised {i})").id)
        elif kind == "invalidations":
            invalidate_memory(store, active.pop(rng.randrange(len(active))), "turned out wrong")
        elif kind == "state":
            pid = "archive" if archive_left > 0 else rng.choice(PROJECTS)
            archive_left -= 1
            key = f"k{rng.randrange(30)}"
            first["state_key"] = first["state_key"] or key
            propose_state(store, pid, key, words(rng, 6) + f" ({i})", approve=True, reviewer=BOB)
        elif kind == "refreshes":
            pid = rng.choice(PROJECTS)
            churn(src, pid, p["files"], rng, day)
            stage_project(store, get_project(store, pid))
        spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t_op
        if i % 2000 == 0 and i:
            rate = i / (time.perf_counter() - t0)
            print(f"  built {i}/{len(ops)} operations ({rate:.0f}/s)", flush=True)
    prune_snapshots(store)
    nightly(store.path)
    del os.environ["ATOCORE_AUTO_PACK"]
    build_seconds = time.perf_counter() - t0
    print("  seconds per kind of operation: " + ", ".join(
        f"{k} {v:.0f} s ({v / max(1, ops.count(k)) * 1000:.1f} ms each)" for k, v in sorted(spent.items())), flush=True)
    print(f"  built {len(ops)} operations in {build_seconds:.0f} s; indexing...", flush=True)
    t = time.perf_counter()
    from atocore.retrieval import open_retriever

    open_retriever(store).update()
    index_seconds = time.perf_counter() - t
    t = time.perf_counter()
    store.history.update()
    history_seconds = time.perf_counter() - t
    wait_idle(store.path, timeout=3600)
    newest = list_memories(store)[-1].id if list_memories(store) else None
    return {"plan": p, "build_seconds": build_seconds, "maintenance": maintenance, "spent": spent, "index_seconds": index_seconds,
            "history_rebuild_seconds": history_seconds, "first_memory": first["memory"],
            "newest_memory": newest, "ops": len(ops)}


def cached_store(scale: float, rebuild: bool) -> tuple[Path, dict]:
    key = hashlib.sha256(json.dumps({"v": VERSION, "scale": scale}).encode()).hexdigest()[:12]
    base = Path(tempfile.gettempdir()) / f"atocore-year-{key}"
    meta_file = base / "built.json"
    if meta_file.exists() and not rebuild:
        return base, json.loads(meta_file.read_text())
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    print(f"building a year at scale {scale} in {base} (cached for later runs)", flush=True)
    fsync = os.fsync
    os.fsync = lambda fd: None  # set-up only (as bench/store.py seeds): measured writes fsync
    try:
        meta = build(base, scale)
    finally:
        os.fsync = fsync
    meta_file.write_text(json.dumps(meta))
    return base, meta


# --------------------------------------------------------------------------- measuring

ROWS: list[tuple[str, str, str]] = []


def row(what: str, figure: str, target: str = "-") -> None:
    ROWS.append((what, figure, target))
    print(f"  {what}: {figure}  [{target}]", flush=True)


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    """Best of ``repeat`` wall times in ms (the machine is shared) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best, out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)


def measure_history(store_path: Path, meta: dict) -> None:
    store = Store(store_path)
    ncommits = int(git("rev-list", "--first-parent", "--count", "main", cwd=store_path).stdout)
    row("commits on main (first-parent) / all", f"{ncommits} / "
        f"{int(git('rev-list', '--count', '--all', cwd=store_path).stdout)}")
    srcs = sorted(p for p in store.files("main", "sources/optics"))
    cases = [
        ("memory, written first", lambda s: memory_history(s, meta["first_memory"])),
        ("memory, written last", lambda s: memory_history(s, meta["newest_memory"])),
        ("state entry, old (archive)", lambda s: state_history(s, "archive")),
        ("state entry, busy (optics)", lambda s: state_history(s, "optics")),
        ("source file, old", lambda s: s.log("main", path=srcs[0])),
        ("source file, new", lambda s: s.log("main", path=srcs[-1])),
    ]
    for label, fn in cases:
        best, out = timed(lambda: fn(store))
        cold_store = Store(store_path)
        t = time.perf_counter()
        fn(cold_store)
        cold = (time.perf_counter() - t) * 1000
        row(f"history of {label} ({len(out)} entries)", f"{best:.1f} ms (fresh handle {cold:.1f} ms)", "<= 50 ms")
    from atocore.capture.extract import Known

    best, known = timed(lambda: Known(store, scan_history=True), repeat=3)
    row(f"extraction's known set (memories, open reviews, {len(known.reviewed)} reviewed ids)", f"{best:.0f} ms")
    # catching up: 200 new commits, then the first history call after them
    for i in range(200):
        add_memory(store, f"catch-up note {i}", "knowledge")
    t = time.perf_counter()
    action = store.history.update()
    row("history index catch-up after 200 new commits", f"{(time.perf_counter() - t) * 1000:.0f} ms ({action})")
    (store.index_dir / "history.sqlite").unlink()
    t = time.perf_counter()
    action = Store(store_path).history.update()
    row(f"history index full rebuild from the store ({action})", f"{time.perf_counter() - t:.1f} s")
    row("history index file", f"{(store.index_dir / 'history.sqlite').stat().st_size / 1e6:.1f} MB")
    os.environ["ATOCORE_HISTORY_INDEX"] = "0"
    try:
        best, out = timed(lambda: memory_history(Store(store_path), meta["newest_memory"]), repeat=1)
        row("  (for comparison) walk without the index, newest memory", f"{best:.0f} ms")
        if ncommits <= 15_000:  # minutes at 50,000 commits on a shared machine
            best, out = timed(lambda: state_history(Store(store_path), "archive", limit=1), repeat=1)
            row(f"  (for comparison) walk without the index, state of archive (walks ~{ncommits} commits)",
                f"{best:.0f} ms")
        best, out = timed(lambda: Known(Store(store_path), scan_history=True), repeat=1)
        row("  (for comparison) the known set walking every commit for reviewed ids", f"{best:.0f} ms")
    finally:
        del os.environ["ATOCORE_HISTORY_INDEX"]


def measure_status_reviews(store_path: Path) -> None:
    from atocore.cli.store_cmds import index_summary, store_summary

    n_open = len(Store(store_path).refs(b"refs/heads/review/"))

    def wall_and_cpu(fn) -> str:  # the machine is shared: CPU time is the steadier figure
        walls, cpus = [], []
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            fn()
            walls.append((time.perf_counter() - t) * 1000)
            cpus.append((time.process_time() - c) * 1000)
        return f"{min(walls):.0f} ms (CPU {min(cpus):.0f} ms)"

    row(f"review list, {n_open} open reviews (in process)", wall_and_cpu(lambda: list_reviews(Store(store_path))),
        "<= 500 ms")
    row("status (in process: counts, invalid files, reviews, index)",
        wall_and_cpu(lambda: (store_summary(s := Store(store_path)), index_summary(s))), "<= 300 ms")
    env = {**os.environ, "ATOCORE_STORE": str(store_path)}
    for label, args, target in (("atocore status (CLI, incl. interpreter start)", ["status"], "-"),
                                ("atocore review list (CLI, incl. interpreter start)", ["review", "list"], "-")):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "atocore", *args], env=env, capture_output=True, check=True)
            times.append((time.perf_counter() - t) * 1000)
        row(label, f"{min(times):.0f} ms", target)


def measure_writes(store_path: Path) -> None:
    store = Store(store_path)
    os.sync()
    lat = []
    for i in range(100):
        t = time.perf_counter()
        add_memory(store, f"measured write {i}: {WORDS[i % len(WORDS)]}", "knowledge", project="optics")
        lat.append((time.perf_counter() - t) * 1000)
    n = len(list(store.files("main", "memories")))
    row(f"memory write at {n} memories (fsynced), median / p99", f"{statistics.median(lat):.1f} / {pct(lat, 99):.1f} ms",
        "<= 8 / 25 ms")


def measure_repack(store_path: Path) -> None:
    """The maintenance pass (store/maintain.py) at this size, and writes while it runs."""
    objects = store_path / "objects"
    loose = sum(1 for d in objects.iterdir() if len(d.name) == 2 for _ in d.iterdir())
    row("objects after the year: loose / packs", f"{loose} / {pack_count(objects)}")
    os.environ["ATOCORE_AUTO_PACK"] = "0"  # this measurement starts the passes itself
    try:
        store = Store(store_path)
        for i in range(300):  # ~300 writes' worth of loose objects (memories/ trees of 3,000+ entries)
            add_memory(store, f"pile up {i}", "knowledge")
        est = loose_estimate(objects)
        row("loose objects after 300 memory writes (estimated count / MB)", f"{est[0]} / {est[1] / 1e6:.0f} MB",
            "repack past 2,048 / 128 MB")
        for label, full in (("incremental pass (repack -d)", False), ("consolidating pass (repack --cruft)", True)):
            code = ("import sys; from pathlib import Path; from atocore.store import maintain as m; "
                    f"p = Path(sys.argv[1]); print(m.pack(p, full={full}, timeout=3600))")
            t = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", code, str(store_path)], stdout=subprocess.DEVNULL)
            try:
                os.setpriority(os.PRIO_PROCESS, proc.pid, 19)  # as the background job runs
            except OSError:
                pass
            lat = []
            while proc.poll() is None and len(lat) < 3000:
                t1 = time.perf_counter()
                add_memory(store, f"during repack {len(lat)}", "knowledge")
                lat.append((time.perf_counter() - t1) * 1000)
            proc.wait()
            took = time.perf_counter() - t
            figure = f"{took:.1f} s"
            if lat:
                figure += f"; {len(lat)} memory writes meanwhile, median / p99 {statistics.median(lat):.1f} / " \
                          f"{pct(lat, 99):.1f} ms"
            row(label, figure, "writes <= 8 / 25 ms")
    finally:
        del os.environ["ATOCORE_AUTO_PACK"]
    loose = sum(1 for d in objects.iterdir() if len(d.name) == 2 for _ in d.iterdir())
    row("after both passes: loose / packs", f"{loose} / {pack_count(objects)}")


def measure_size(store_path: Path, work: Path) -> None:
    wait_idle(store_path, timeout=3600)
    size = du(store_path / "objects")
    copy = work / "gc-copy.git"
    t = time.perf_counter()
    git("clone", "-q", "--mirror", "--no-local", str(store_path), str(copy), cwd=work)
    clone_s = time.perf_counter() - t
    row("git clone (--no-local, all refs)", f"{clone_s:.1f} s")
    t = time.perf_counter()
    git("-c", "pack.threads=2", "gc", "-q", "--aggressive", "--prune=now", cwd=copy)
    gc_s = time.perf_counter() - t
    gc_size = du(copy / "objects")
    row("store objects on disk as the year left them vs the same after git gc --aggressive",
        f"{size / 1e6:.1f} MB vs {gc_size / 1e6:.1f} MB = {size / gc_size:.2f}x (gc took {gc_s:.0f} s)", "<= 2x")
    from atocore.store.maintain import pack

    t = time.perf_counter()
    pack(store_path, full=True, timeout=3600)
    after = du(store_path / "objects")
    row("  the same right after a consolidating pass (repack -a -d --cruft)",
        f"{after / 1e6:.1f} MB = {after / gc_size:.2f}x (pass took {time.perf_counter() - t:.0f} s)", "<= 2x")
    shutil.rmtree(copy, ignore_errors=True)
    files = sorted(Store(store_path).files("main", "sources/optics"))
    t = time.perf_counter()
    out = git("log", "--format=%h", "--", files[0], cwd=store_path).stdout.split()
    row(f"git log -- <source file> (real git, {len(out)} commits)", f"{(time.perf_counter() - t) * 1000:.0f} ms")


def measure_backup(store_path: Path, work: Path) -> None:
    from atocore.backup import push
    from atocore.cli.follow import init_from  # recover, then rebuild the indexes

    store = Store(store_path)
    remote = work / "laptop.git"
    t = time.perf_counter()
    rep = push(store, str(remote), create=True)
    assert rep["ok"], rep
    row("first full backup push + verify", f"{time.perf_counter() - t:.1f} s")
    times = []
    for i in range(10):
        add_memory(store, f"incremental {i}", "knowledge")
        t = time.perf_counter()
        rep = push(store, str(remote))
        times.append((time.perf_counter() - t) * 1000)
        assert rep["ok"], rep
    row("incremental backup push of one commit (n=10), median / max",
        f"{statistics.median(times):.0f} / {max(times):.0f} ms", "<= 300 ms")
    env = {**os.environ, "ATOCORE_STORE": str(store_path)}
    times = []
    for i in range(3):
        add_memory(store, f"incremental by the CLI {i}", "knowledge")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "atocore", "backup", "push", str(remote)], env=env,
                       capture_output=True, check=True)
        times.append((time.perf_counter() - t) * 1000)
    row("atocore backup push (CLI, a new process: gate verdicts from disk, incl. interpreter start), best",
        f"{min(times):.0f} ms")
    from atocore.backup.state import load_state, save_state

    state = load_state(store)
    for entry in state["remotes"].values():  # as the first push of the next day finds them
        for rec in (entry.get("hashed_packs") or {}).values():
            rec["at"] -= 25 * 3600
    save_state(store, state)
    add_memory(store, "the next day", "knowledge")
    t = time.perf_counter()
    rep = push(store, str(remote))
    assert rep["ok"], rep
    v = rep["results"][0]["verify"]
    row("the day's first push (re-hashes every remote pack once a day)",
        f"{(time.perf_counter() - t) * 1000:.0f} ms ({v['rehashed_bytes'] / 1e6:.0f} MB re-hashed)")
    t = time.perf_counter()
    rec = init_from(str(remote), work / "recovered")
    info = rec.recovery
    row("init --from recovery: clone + object check / search index / history index (side by side) / total",
        f"{info['clone_seconds']:.1f} / {info.get('index_seconds', float('nan')):.1f} / "
        f"{info.get('history_seconds', float('nan')):.1f} / "
        f"{time.perf_counter() - t:.1f} s", "<= 60 s total")
    return rec


def measure_drill(rec: Store) -> None:
    from atocore.backup import drill

    t = time.perf_counter()
    rep = drill(rec)
    slow = max(rep["steps"], key=lambda s: s["seconds"])
    row("atocore drill", f"{'passed' if rep['ok'] else 'FAILED'} in {time.perf_counter() - t:.1f} s "
        f"(slowest step {slow['name']} {slow['seconds']:.1f} s)")


def post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/context/build", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def measure_service(store_path: Path) -> None:
    floor = []
    for _ in range(2):  # the same run's floor: the interpreter importing the server and the model code
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import atocore.server.run, atocore.retrieval.embedder, model2vec"],
                       check=True, capture_output=True)
        floor.append(time.perf_counter() - t)
    import atocore.server.run as run_mod

    cached = Path(run_mod.__file__).parent / "__pycache__"
    row("floor: interpreter + imports of the service (no store)",
        f"{min(floor):.2f} s (atocore's own bytecode {'cached' if cached.is_dir() else 'NOT cached: compiled at every start'}"
        f"{', PYTHONDONTWRITEBYTECODE set' if os.environ.get('PYTHONDONTWRITEBYTECODE') else ''})")
    from atocore.retrieval import open_retriever

    # "with an up-to-date index": earlier parts wrote commits; the index's stay-empty calibration
    # (stay-empty.json in the generation, computed once per generation) is part of it
    retriever = open_retriever(Store(store_path))
    retriever.update()
    retriever.calibrate(wait=True)
    Store(store_path).history.update()
    port = free_port()
    env = {**os.environ, "ATOCORE_STORE": str(store_path)}
    body = json.dumps({"prompt": "What is the torque spec for the lens mount?", "project": "optics"}).encode()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "atocore", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = None
        while time.perf_counter() - t < 300:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if post(c, body) == 200:
                    ready = time.perf_counter() - t
                    break
            except OSError:
                time.sleep(0.02)
        row("service start until /context/build answers (index up to date)",
            f"{ready:.2f} s" if ready else "did not answer in 300 s", "<= 3 s")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        rng = random.Random(3)
        lat = []
        load0 = os.getloadavg()[0]
        for i in range(20):  # (the first 20 are not counted)
            b = json.dumps({"prompt": f"What about {words(rng, 4)}?", "project": PROJECTS[i % 4]}).encode()
            assert post(c, b) == 200
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu0 = int(fields[11]) + int(fields[12])
        for i in range(20, 300):
            b = json.dumps({"prompt": f"What about {words(rng, 4)}?", "project": PROJECTS[i % 4]}).encode()
            t1 = time.perf_counter()
            assert post(c, b) == 200
            lat.append((time.perf_counter() - t1) * 1000)
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12]) - cpu0) / os.sysconf("SC_CLK_TCK") * 1000 / len(lat)
        row(f"/context/build p50 / p99 (n={len(lat)})", f"{pct(lat, 50):.2f} / {pct(lat, 99):.2f} ms; server CPU "
            f"{cpu:.2f} ms/request; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}", "<= 4 / 10 ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of a year's activity (0.1: a quick run)")
    ap.add_argument("--rebuild", action="store_true", help="build the store again even if cached")
    ap.add_argument("--skip-service", action="store_true")
    ap.add_argument("--skip-drill", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep this run's working copy")
    ap.add_argument("--build-only", action="store_true", help="build (or find) the cached store and stop")
    ap.add_argument("--reads-only", action="store_true", help="measure only history, status and review list")
    ap.add_argument("--parts", default="history,status,service,writes,backup,drill,size,repack",
                    help="comma-separated subset of the measurements to run")
    args = ap.parse_args()
    base, meta = cached_store(args.scale, args.rebuild)
    t = time.perf_counter()
    cached = Store(base / "store")
    action = cached.history.update()  # derived: brought to this code's format once
    cached.history._close_reader()  # the last connection closing folds the WAL back in before the copy
    del cached
    if action != "none":
        print(f"  history index of the cached store: {action} in {time.perf_counter() - t:.1f} s", flush=True)
    if args.build_only:
        print(json.dumps(meta))
        return
    row("built (cached)", f"{meta['ops']} operations in {meta['build_seconds']:.0f} s, "
        f"search index {meta['index_seconds']:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="atocore-year-run-"))
    try:
        store_path = work / "store"
        shutil.copytree(base / "store", store_path, symlinks=True,
                        ignore=shutil.ignore_patterns("*.sqlite-shm"))  # SQLite rebuilds it
        parts = set(args.parts.split(","))
        if args.reads_only:
            parts = {"history", "status"}
        if "history" in parts:
            measure_history(store_path, meta)
        if "status" in parts:
            measure_status_reviews(store_path)
        if "service" in parts and not args.skip_service:
            measure_service(store_path)
        if "writes" in parts:
            measure_writes(store_path)
        rec = measure_backup(store_path, work) if "backup" in parts else None
        if rec is not None and "drill" in parts and not args.skip_drill:
            measure_drill(rec)
        if "size" in parts:
            measure_size(store_path, work)
        if "repack" in parts:
            measure_repack(store_path)
    finally:
        print()
        print(f"A year at scale {args.scale}: {meta['plan']}")
        print("| measure | figure | target |\n| --- | --- | --- |")
        for what, figure, target in ROWS:
            print(f"| {what} | {figure} | {target} |")
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
