"""kill -9 during a push: nothing is lost, the remote never points at missing objects, and the
next push completes. The killed process is stopped at chosen points (a test-side patch that
prints a line and sleeps) or while its pack file is being written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from atocore.backup import push, status, verify_remote

from .fixtures_backup import fsck, git_daemon, make_bare, random_files, rev_parse  # noqa: F401

PUSH_WITH_PAUSE = textwrap.dedent("""
    import sys, time
    from atocore.store import open_store
    point = sys.argv[3]
    if point == "before-verify":
        import atocore.backup
        mod = sys.modules["atocore.backup.push"]
        real = mod.verify
        def paused(*a, **kw):
            print("paused", flush=True); time.sleep(120)
        mod.verify = paused
    print("started", flush=True)
    from atocore.backup import push
    print(push(open_store(sys.argv[1]), sys.argv[2]))
""")


def _start_push(store, remote: str, point: str = "none") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PUSH_WITH_PAUSE, str(store.path), remote, point],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _wait_for(cond, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the push ended before the kill point: {proc.communicate()}")
        time.sleep(0.002)
    raise AssertionError("kill point never reached")


def _partial_pack(remote: Path) -> bool:
    pack = remote / "objects" / "pack"
    return any(f.name.startswith("tmp") and f.stat().st_size > 0 for f in pack.iterdir()) if pack.is_dir() else False


@pytest.fixture
def big_store(store):
    store.commit(random_files(600, 8000), "Bulk sources")  # ~2.4 MB pack: takes a while to write
    return store


def test_kill_while_writing_pack_to_local_remote(big_store, tmp_path):
    store = big_store
    remote = make_bare(tmp_path / "laptop.git")
    proc = _start_push(store, str(remote))
    _wait_for(lambda: _partial_pack(remote), proc=proc)
    _kill(proc)
    assert rev_parse(remote, "main") is None  # no ref moved
    fsck(remote)
    fsck(store.path)
    rep = push(store, str(remote), deep=True)  # the writer lock was released by the kernel
    assert rep["ok"], rep
    assert rev_parse(remote, "main") == store.head()
    fsck(remote)


def test_kill_between_send_and_verify(big_store, tmp_path):
    store = big_store
    remote = make_bare(tmp_path / "laptop.git")
    proc = _start_push(store, str(remote), "before-verify")
    assert proc.stdout.readline().strip() == "started"
    _wait_for(lambda: rev_parse(remote, "main") is not None, proc=proc)
    assert proc.stdout.readline().strip() == "paused"
    _kill(proc)
    # The remote got everything but the push was never verified: status must not claim it was.
    st = status(store)["remotes"]
    assert not st or st[0]["last_verified"] is None
    fsck(remote)
    rep = push(store, str(remote))
    assert rep["ok"] and rep["results"][0]["updated"] == []  # nothing left to send; now verified
    assert status(store)["remotes"][0]["commits_behind"] == 0


def test_kill_during_push_to_git_daemon(big_store, git_daemon):
    store = big_store
    repo = make_bare(git_daemon.base / "atocore.git")
    proc = _start_push(store, git_daemon.url("atocore.git"))
    objects = repo / "objects"
    # git receive-pack writes into a quarantine folder (objects/incoming-*) until the refs move.
    _wait_for(lambda: any(p.name.startswith(("incoming-", "tmp_pack")) for p in objects.rglob("*")), proc=proc)
    _kill(proc)
    time.sleep(0.3)
    assert rev_parse(repo, "main") is None
    fsck(repo)
    rep = push(store, git_daemon.url("atocore.git"), deep=True)
    assert rep["ok"], rep
    assert rev_parse(repo, "main") == store.head()
    fsck(repo)
    assert verify_remote(store, git_daemon.url("atocore.git"))["ok"]
