"""Benchmark: `atocore hook claude-code` process time, start to exit.

Starts a real `atocore serve` on a free loopback port over a scratch store, then runs the
hook as Claude Code would (a fresh process per event, JSON on stdin) and prints p50/p90:

- python-startup: `python -c pass`, the floor no hook can beat
- hook-noop: an event the hook ignores (process + imports + plugin lookup; no request)
- "installed form": the same through `python -m atocore.capture hook claude-code`, the command
  `atocore install claude-code` writes (no click in front)
- prompt (UserPromptSubmit): the auto-context hook, total; plus /context/build alone as
  measured from a warm client, so the hook's own overhead is the difference
- stop (Stop): capture of a new turn through POST /interactions
- prompt-server-down: the fail-open path (connection refused)

Wall time depends on machine load (printed); the hook process's own CPU time (user+sys,
from getrusage) is printed beside it and is far less sensitive to other work on the machine.

Usage: .venv/bin/python bench/hook.py [-n 30]
Target (issue 5): hook process <= 80 ms p50 with the server up.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).with_name("atocore")
TEST_MODEL = ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], stdin: bytes, env: dict, tag: str = "") -> float:
    """Wall time of one process, start to exit (ms); its CPU time is kept under ``tag``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = (time.perf_counter() - t) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    CPU.setdefault(tag, []).append(cpu)
    return wall


def stats(name: str, xs: list[float], tag: str | None = None) -> None:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    cpu = f"   cpu p50 {statistics.median(CPU[tag]):6.1f} ms" if tag in CPU else ""
    print(f"{name:28s} p50 {statistics.median(xs):7.1f} ms   p90 {p90:7.1f} ms{cpu}   (n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atocore-bench-hook-"))
    env = {**os.environ, "ATOCORE_HOME": str(tmp / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("ATOCORE_STORE", None)
    # An installed atocore has its .pyc files; a dev shell with PYTHONDONTWRITEBYTECODE=1 would
    # recompile every module on every hook run. Measure the installed situation.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if TEST_MODEL.is_dir() and "ATOCORE_EMBED_MODEL" not in env:
        env["ATOCORE_EMBED_MODEL"] = str(TEST_MODEL)
    store = tmp / "store"
    subprocess.run([str(BIN), "init", str(store)], env=env, check=True, capture_output=True)
    for text in ("The login test uses a fixture token that expires every 24 hours.",
                 "Backups go to the NAS nightly with restic.",
                 "The operator prefers pytest -x -q for quick runs."):
        subprocess.run([str(BIN), "--store", str(store), "memory", "add", text, "--type", "knowledge"],
                       env=env, check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([str(BIN), "--store", str(store), "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sys.path.insert(0, str(ROOT))
        from atocore.capture.client import post_json

        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
        body = {"prompt": "why does the login test fail with the fixture token?", "budget_chars": 8000,
                "cwd": str(tmp)}
        post_json(url, "/context/build", body, "", 30)  # warm: model and index loaded
        hook_env = {**env, "ATOCORE_URL": url, "ATOCORE_HOOK_TIMEOUT": "5"}
        cmd = [str(BIN), "hook", "claude-code"]
        installed = [sys.executable, "-P", "-m", "atocore.capture", "hook", "claude-code"]  # what `atocore install` writes
        transcript = tmp / "t.jsonl"
        base = {"session_id": "bench-session", "transcript_path": str(transcript), "cwd": str(tmp)}

        floor = [timed([sys.executable, "-c", "pass"], b"", env, "floor") for _ in range(args.n)]
        noop = json.dumps({**base, "hook_event_name": "Notification", "message": "hi"}).encode()
        timed(cmd, noop, hook_env)  # fills the plugin-lookup cache
        noops = [timed(cmd, noop, hook_env, "noop") for _ in range(args.n)]
        inst_noops = [timed(installed, noop, hook_env, "inst-noop") for _ in range(args.n)]
        prompt = json.dumps({**base, "hook_event_name": "UserPromptSubmit", "prompt": body["prompt"]}).encode()
        prompts = [timed(cmd, prompt, hook_env, "prompt") for _ in range(args.n)]
        inst_prompts = [timed(installed, prompt, hook_env, "inst-prompt") for _ in range(args.n)]
        builds = []
        for _ in range(args.n):
            t = time.perf_counter()
            post_json(url, "/context/build", body, "", 30)
            builds.append((time.perf_counter() - t) * 1000)
        stops = []
        for i in range(args.n):
            transcript.write_text(json.dumps({
                "type": "user", "uuid": f"bench-{i}", "parentUuid": None, "sessionId": "bench-session",
                "timestamp": "2026-08-01T09:12:03.114Z", "message": {"role": "user", "content": f"question {i}"}}) + "\n")
            stop = json.dumps({**base, "hook_event_name": "Stop", "last_assistant_message": f"answer {i}"}).encode()
            stops.append(timed(cmd, stop, hook_env, "stop"))
        down_env = {**hook_env, "ATOCORE_URL": f"http://127.0.0.1:{free_port()}"}
        downs = [timed(cmd, prompt, down_env, "down") for _ in range(args.n)]

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"atocore hook claude-code, server {url}, {os.cpu_count()} cpu(s), load average {load:.1f}")
        stats("python-startup (floor)", floor, "floor")
        stats("hook-noop", noops, "noop")
        stats("  installed form", inst_noops, "inst-noop")
        stats("prompt (UserPromptSubmit)", prompts, "prompt")
        stats("  installed form", inst_prompts, "inst-prompt")
        stats("  /context/build alone", builds)
        print(f"{'  hook overhead (p50 diff)':28s}     {statistics.median(prompts) - statistics.median(builds):7.1f} ms")
        stats("stop (capture a turn)", stops, "stop")
        stats("prompt-server-down", downs, "down")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
