"""`atocore up` (what `make serve` runs): default store, AtoCore's own docs ingested, service answering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.fixtures_server import free_port


def _start_up(env: dict, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "atocore", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_banner(proc: subprocess.Popen, timeout: float = 90) -> str:
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        out.append(line)
        if "curl" in line:
            return "".join(out)
    proc.kill()
    raise AssertionError("atocore up did not start:\n" + "".join(out))


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.parametrize("model", ["test", "missing"])
def test_up_creates_store_ingests_docs_and_serves(tmp_path, model, model_path):
    home = tmp_path / "home"
    env = {**os.environ, "ATOCORE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("ATOCORE_STORE", None)
    if model == "missing":  # no embedding model available offline: BM25 only, degraded, still quick
        env["ATOCORE_EMBED_MODEL"] = "nobody/no-such-model"
    port = free_port()
    started = time.monotonic()
    proc = _start_up(env, port)
    try:
        banner = _wait_banner(proc)
        assert time.monotonic() - started < 60
        assert f"http://127.0.0.1:{port}" in banner and "registered project atocore" in banner
        assert (home / "store" / "HEAD").is_file()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            health = c.get("/health").json()
            assert health["status"] == ("ok" if model == "test" else "degraded")
            r = c.post("/context/build", json={"prompt": "How is the store backed up?", "project": "atocore"})
            assert r.status_code == 200
            assert any(i["kind"] == "chunk" and i["project"] == "atocore" for i in r.json()["items"])
            projects = c.get("/projects").json()
            assert [p["id"] for p in projects] == ["atocore"]
    finally:
        _stop(proc)
    # A second start reuses the store and does not re-register or re-commit.
    proc = _start_up(env, port)
    try:
        banner = _wait_banner(proc)
        # (no "nothing changed" check: the docs folder is live and may be edited meanwhile)
        assert "using store" in banner and "registered project" not in banner
    finally:
        _stop(proc)
