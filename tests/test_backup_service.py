"""With the real service running (``atocore serve`` in its own process): main moved from outside
(a push from a clone, a pull from the laptop, a restore) is noticed and re-indexed without a
restart; a CLI restore is refused while it runs; POST /admin/restore and /admin/backup work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from atocore.memories import add_memory
from atocore.ids import new_ulid
from atocore.records import Memory

from .conftest import run_cli
from .fixtures_backup import free_port, fsck, git, make_bare, rev_parse

TOKEN = "backup-test-token"


@pytest.fixture
def served(store):
    add_memory(store, "The dome shutter motor draws 4 A when opening", "knowledge")
    port = free_port()
    env = {**os.environ, "ATOCORE_STORE": str(store.path), "ATOCORE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "atocore", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    deadline = time.monotonic() + 120  # generous: the machine may be loaded; we wait on the condition
    while True:
        # Ready means the search index answers, not only that /health does (a 503
        # IndexUnavailable came back under load when the fixture waited for /health alone).
        try:
            if client.post("/search", json={"query": "dome shutter"}).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        time.sleep(0.1)
    # The service builds the missing index in the background; searches answer 503 until then.
    while client.get("/health").json()["index"].get("commit") != store.head():
        if time.monotonic() > deadline:
            raise AssertionError("the service did not build its index in time")
        time.sleep(0.1)
    yield store, client
    client.close()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _hit_ids(client, query: str) -> list[str] | None:
    """The hit ids, or None while the index is being rebuilt (503 IndexUnavailable: not yet)."""
    r = client.post("/search", json={"query": query, "k": 10})
    if r.status_code == 503 and r.json().get("error") == "IndexUnavailable":
        return None
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["hits"]]


def _has(client, query: str, rid: str) -> bool:
    ids = _hit_ids(client, query)
    return ids is not None and rid in ids


def _lacks(client, query: str, rid: str) -> bool:
    ids = _hit_ids(client, query)
    return ids is not None and rid not in ids


def _eventually(cond, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("the service did not catch up with main")


def test_external_moves_of_main_are_reindexed_without_restart(served, tmp_path):
    store, client = served
    q = "telescope focuser backlash compensation"
    # 1. A person edits through a clone and pushes back (real git CLI).
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work))
    mem = Memory(id=new_ulid(), type="knowledge",
                 text="The telescope focuser needs 40 steps of backlash compensation")
    (work / "memories").mkdir(exist_ok=True)
    (work / mem.path).write_bytes(mem.dump())
    git("add", mem.path, cwd=work)
    git("commit", "-q", "-m", "Add a memory from a clone", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    _eventually(lambda: _has(client, q, mem.id))

    # 2. A CLI restore is refused while the service runs; the service's own restore works.
    proc = run_cli("restore", "main~1", store=store, check=False)
    assert proc.returncode != 0 and "POST /admin/restore" in proc.stderr
    r = client.post("/admin/restore", json={"rev": "main~1", "dry_run": True})
    assert r.status_code == 200 and r.json()["removed"] == [mem.path]
    r = client.post("/admin/restore", json={"rev": "main~1"})
    assert r.status_code == 200, r.text
    assert r.json()["snapshot"].startswith("backup/")
    _eventually(lambda: _lacks(client, q, mem.id))

    # 3. A pull from the laptop: commits made elsewhere arrive by git fetch into the store.
    laptop = make_bare(tmp_path / "laptop.git")
    r = client.post("/admin/backup", json={"remote": str(laptop)})
    assert r.status_code == 200 and r.json()["ok"], r.text
    work2 = tmp_path / "laptop-work"
    git("clone", "-q", str(laptop), str(work2))
    mem2 = Memory(id=new_ulid(), type="knowledge",
                  text="The telescope focuser backlash was measured again: 38 steps")
    (work2 / mem2.path).write_bytes(mem2.dump())
    git("add", mem2.path, cwd=work2)
    git("commit", "-q", "-m", "Measured on the laptop", cwd=work2)
    git("push", "-q", "origin", "main", cwd=work2)
    git("fetch", "-q", str(laptop), "main:main", git_dir=store.path)
    _eventually(lambda: _has(client, q, mem2.id))
    fsck(store.path)

    # 4. A scheduled backup through the service picks it all up, verified.
    r = client.post("/admin/backup", json={"remote": str(laptop)})
    assert r.json()["ok"] and rev_parse(laptop, "main") == store.head()
    st = client.get("/admin/backup").json()
    assert st["remotes"][0]["commits_behind"] == 0


def test_admin_endpoints_need_the_token(served):
    store, client = served
    r = httpx.post(str(client.base_url) + "/admin/restore", json={"rev": "main"})
    assert r.status_code in (401, 403)
    r = client.post("/admin/restore", json={"rev": "no-such-rev"})
    assert r.status_code == 404 and "not found" in r.text
