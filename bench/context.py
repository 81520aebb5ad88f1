"""Benchmark: POST /context/build over loopback HTTP on a large store, and refresh of a 300-file project.

    .venv/bin/python bench/context.py [--chunks 100000] [--requests 2000] [--seconds 5] [--fresh]
                                      [--distinct] [--profile FILE] [--skip-refresh]

Builds (once, cached in $TMPDIR/atocore-bench-context-<chunks>) a store with 4 projects whose
markdown sources chunk into about ``--chunks`` chunks, starts ``atocore serve`` in a subprocess
and measures, with stdlib keep-alive HTTP clients (so the client costs little CPU):

* one client, sequential requests: p50 / p99 latency (targets 4 ms / 10 ms)
* 8 concurrent clients: requests per second (target >= 600)
* server RSS after the load (target <= 500 MB)
* refresh of a new 300-file project end to end: staged, committed, indexed (target <= 10 s)

Prompts mix a given project, a project inferred from an alias, and no clear project; 200 of them
cycle, or with ``--distinct`` every request has a prompt of its own (nothing a cache keyed by a
hit's text or a word can have seen twice). The machine is shared: the load average is printed
beside each figure, with the server's own CPU per request (user and system) and how often the
kernel preempted it, which is what moves the wall figures on a busy machine. ``--profile FILE``
records the server with py-spy (``pip install -e '.[bench]'``) during the single-client run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"
PROJECTS = {"p04": ["primary mirror", "big glass"], "rover": ["rv-2"], "cryo": ["dewar"], "antenna": ["dish"]}
SECTIONS_PER_FILE = 20


def vocabulary(rng: random.Random, n: int = 6000) -> list[str]:
    syll = ["ka", "lo", "mi", "ter", "on", "ax", "ri", "pu", "sel", "dro", "ven", "qui", "zo", "mar", "tel", "fen"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syll) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def section(rng: random.Random, vocab: list[str], project: str, i: int) -> str:
    words = [vocab[min(int(rng.paretovariate(1.1)) - 1, len(vocab) - 1)] if rng.random() < 0.6 else rng.choice(vocab)
             for _ in range(rng.randint(60, 110))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), project)
    return f"## Section {i} {rng.choice(vocab)}\n\n" + " ".join(words) + ".\n"


def write_project(folder: Path, project: str, files: int, rng: random.Random, vocab: list[str]) -> None:
    for f in range(files):
        p = folder / f"part{f // 100:03d}" / f"doc{f:05d}.md"
        p.parent.mkdir(parents=True, exist_ok=True)
        body = [f"# {project} document {f}\n"] + [section(rng, vocab, project, i) for i in range(SECTIONS_PER_FILE)]
        p.write_text("\n".join(body))


def build_store(base: Path, chunks: int) -> tuple[Path, list[str]]:
    from atocore.projects import refresh, register_project
    from atocore.retrieval import open_retriever
    from atocore.state import propose_state
    from atocore.store import init_store

    rng = random.Random(7)
    vocab = vocabulary(rng)
    store_path = base / "store"
    if (base / "ready").is_file():
        return store_path, vocab
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    files_per_project = max(1, chunks // (len(PROJECTS) * SECTIONS_PER_FILE))
    t0 = time.perf_counter()
    store, _ = init_store(store_path)
    for pid, aliases in PROJECTS.items():
        write_project(base / "src" / pid, pid, files_per_project, rng, vocab)
        register_project(store, pid, [base / "src" / pid], aliases=aliases, approve=True)
        for k in range(6):
            propose_state(store, pid, f"key-{k}", f"{pid} fact {k}: " + " ".join(rng.sample(vocab, 12)),
                          category=["summary", "status", "focus", "decision", "constraint", "fact"][k], approve=True)
    t1 = time.perf_counter()
    refresh(store, None)
    t2 = time.perf_counter()
    info = open_retriever(store).update()
    t3 = time.perf_counter()
    print(f"built store: {len(PROJECTS)} projects x {files_per_project} files; staging {t2 - t1:.1f} s, "
          f"indexing {t3 - t2:.1f} s ({info.get('action')}), setup {t1 - t0:.1f} s")
    (base / "ready").write_text("ok")
    return store_path, vocab


def prompts(vocab: list[str], n: int = 200) -> list[dict]:
    rng = random.Random(11)
    out = []
    pids = list(PROJECTS)
    for i in range(n):
        words = " ".join(rng.sample(vocab[:800], 3) + rng.sample(vocab, 2))
        pid = pids[i % len(pids)]
        kind = i % 3
        if kind == 0:
            out.append({"prompt": f"What do we know about {words}?", "project": pid})
        elif kind == 1:
            out.append({"prompt": f"In the {PROJECTS[pid][0]} work, explain {words}"})
        else:
            out.append({"prompt": f"Summarise {words} please"})
    return out


def start_server(store_path: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ATOCORE_STORE": str(store_path)}
    proc = subprocess.Popen([sys.executable, "-m", "atocore", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start:\n" + (proc.stdout.read() if proc.stdout else ""))


def post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/context/build", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def rss_mb(pid: int) -> tuple[float, float]:
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            vals[line.split(":")[0]] = int(line.split()[1]) / 1024
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_counters(pid: int) -> tuple[float, float, int]:
    """(user s, system s, involuntary context switches of the main thread) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    invol = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("nonvoluntary_ctxt_switches"):
            invol = int(line.split()[1])
    return int(fields[11]) / tck, int(fields[12]) / tck, invol


def load() -> str:
    return "%.1f" % os.getloadavg()[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_refresh(store_path: Path, base: Path, vocab: list[str]) -> float:
    from atocore.cli.follow import refresh  # stage + commit, then bring the index to main (`atocore refresh`)
    from atocore.projects import register_project
    from atocore.store import Store

    store = Store(store_path)
    rng = random.Random(int(time.time()))
    pid = f"r300-{int(time.time())}"
    folder = Path(tempfile.mkdtemp(prefix="atocore-r300-"))
    for f in range(300):
        (folder / f"doc{f:03d}.md").write_text(f"# {pid} doc {f}\n\n" + "\n".join(
            section(rng, vocab, pid, i) for i in range(3)))
    before = store.head()
    register_project(store, pid, [folder], approve=True)
    t0 = time.perf_counter()
    [report] = refresh(store, pid)
    dt = time.perf_counter() - t0
    assert len(report.added) == 300 and report.index and report.index.get("commit") == store.head()
    shutil.rmtree(folder, ignore_errors=True)
    # Put the cached store back to its 4 projects (history kept) so every run measures the same thing.
    store.commit({}, f"bench: drop project {pid} again", base_tree=store.tree_id(before), allow_empty=True)
    from atocore.retrieval import open_retriever

    open_retriever(store).update()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached store")
    ap.add_argument("--distinct", action="store_true", help="a prompt of its own for every request")
    ap.add_argument("--profile", metavar="FILE", help="py-spy the server during the single-client run (raw format)")
    ap.add_argument("--skip-refresh", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("ATOCORE_EMBED_MODEL", str(DEFAULT_MODEL))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    base = Path(tempfile.gettempdir()) / f"atocore-bench-context-{args.chunks}"
    if args.fresh:
        shutil.rmtree(base, ignore_errors=True)
    store_path, vocab = build_store(base, args.chunks)
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work skews these figures)")
    from atocore.retrieval import open_retriever
    from atocore.store import open_store

    # the index's stay-empty calibration (once per generation, kept beside it) is made before the
    # service starts, as a running service has long made it; otherwise it runs during the first requests
    open_retriever(open_store(store_path)).calibrate(wait=True)
    port = free_port()
    proc = start_server(store_path, port)
    try:
        health = json.loads(_get(port, "/health"))
        counts = health["index"].get("counts", {})
        print(f"index: {counts.get('chunk')} chunks, {counts.get('state')} state entries, "
              f"degraded={health['index'].get('degraded')}")
        bodies = [json.dumps(p).encode() for p in prompts(vocab, args.requests + 200 if args.distinct else 200)]
        conn = http.client.HTTPConnection("127.0.0.1", port)
        for b in bodies[:100]:
            assert post(conn, b) == 200
        sample = json.loads(_post_json(port, bodies[0]))
        print(f"sample build: project={sample['project']} items={len(sample['items'])} "
              f"chars={sample['used_chars']} server_ms={sample['elapsed_ms']}")
        spy = None
        if args.profile:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(proc.pid), "-r", "500",
                                    "-f", "raw", "-o", args.profile, "--nonblocking", "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        lat = []
        timed = bodies[100:] if args.distinct else bodies
        load0 = load()
        u0, s0, i0 = proc_counters(proc.pid)
        for i in range(args.requests):
            t = time.perf_counter()
            assert post(conn, timed[i % len(timed)]) == 200
            lat.append((time.perf_counter() - t) * 1000)
        u1, s1, i1 = proc_counters(proc.pid)
        n = args.requests
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
            print(f"py-spy profile (GIL holders, raw stacks): {args.profile}")
        conn.close()
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"one keep-alive client, {len(lat)} requests{' (distinct prompts)' if args.distinct else ''}: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(lat):.2f} ms  (targets 4 / 10 ms); "
              f"server CPU {(u1 - u0 + s1 - s0) * 1000 / n:.2f} ms/request (user {(u1 - u0) * 1000 / n:.2f}, "
              f"system {(s1 - s0) * 1000 / n:.2f}), preempted {(i1 - i0) / n:.1f} times/request; "
              f"load average {load0} -> {load()}")

        done = [0] * args.clients
        stop = time.perf_counter() + args.seconds
        errors = []

        def worker(n: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port)
            i = n * 17
            try:
                while time.perf_counter() < stop:
                    if post(c, bodies[i % len(bodies)]) != 200:
                        errors.append(1)
                    done[n] += 1
                    i += 1
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        print(f"{args.clients} concurrent clients: {sum(done) / elapsed:.0f} requests/s over {elapsed:.1f} s "
              f"({len(errors)} errors)  (target >= 600); load average {load()}")
        rss, peak = rss_mb(proc.pid)
        print(f"server RSS {rss:.0f} MB (peak {peak:.0f} MB)  (target <= 500 MB)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if args.skip_refresh:
        return
    dt = bench_refresh(store_path, base, vocab)
    print(f"refresh of a new 300-file project (stage + commit + index, store of {args.chunks} chunks): "
          f"{dt:.2f} s  (target <= 10 s)")


def _get(port: int, path: str) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    return c.getresponse().read().decode()


def _post_json(port: int, body: bytes) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/context/build", body=body, headers={"Content-Type": "application/json"})
    return c.getresponse().read().decode()


if __name__ == "__main__":
    main()
