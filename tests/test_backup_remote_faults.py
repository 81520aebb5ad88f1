"""Pushes over git:// to a real ``git daemon`` (and ssh:// through a stand-in ssh), with faults:
unreachable remote, remote gone mid-push, disk full on either side."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys


from atocore.backup import push, status, verify_remote
from atocore.memories import add_memory

from .fixtures_backup import (CuttingProxy, free_port, fsck, git_daemon, make_bare,  # noqa: F401
                              random_files, rev_parse, start_daemon)


def test_push_over_git_daemon_verified_with_git(store, git_daemon):
    repo = make_bare(git_daemon.base / "atocore.git")
    add_memory(store, "optics bench notes", "knowledge")
    store.commit({"sources/p/r.txt": b"r\n"}, "Propose", ref=b"refs/heads/review/x")
    rep = push(store, git_daemon.url("atocore.git"))
    assert rep["ok"], rep
    assert rep["results"][0]["verify"]["method"] == "ls-remote"
    assert rev_parse(repo, "refs/heads/main") == store.head()
    assert rev_parse(repo, "refs/heads/review/x") == store.head(b"refs/heads/review/x")
    fsck(repo)
    add_memory(store, "second", "knowledge")
    rep = push(store, git_daemon.url("atocore.git"), deep=True)
    assert rep["ok"] and rep["results"][0]["verify"]["deep"]
    assert rev_parse(repo, "main") == store.head()
    assert verify_remote(store, git_daemon.url("atocore.git"), deep=True)["ok"]


def test_push_over_ssh_url(store, tmp_path, monkeypatch):
    # A stand-in for ssh that runs the remote command here: exercises the ssh:// transport
    # end to end (git-receive-pack on the far side) without an ssh server.
    fake = tmp_path / "fake-ssh"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake))
    repo = make_bare(tmp_path / "laptop.git")
    rep = push(store, f"ssh://laptop.local{repo}")
    assert rep["ok"], rep
    assert rev_parse(repo, "main") == store.head()
    fsck(repo)


def test_unreachable_remote_is_reported(store):
    port = free_port()  # nothing listens there
    rep = push(store, f"git://127.0.0.1:{port}/atocore.git")
    res = rep["results"][0]
    assert not rep["ok"] and "unreachable" in res["error"]
    assert status(store)["remotes"][0]["last_error"] == res["error"]


def test_remote_disappears_mid_push(store, git_daemon):
    repo = make_bare(git_daemon.base / "atocore.git")
    store.commit(random_files(200, 8000), "Bulk sources")  # ~1.6 MB of incompressible data
    proxy = CuttingProxy(git_daemon.port, limit=300_000)
    try:
        rep = push(store, f"git://127.0.0.1:{proxy.port}/atocore.git")
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    res = rep["results"][0]
    assert not rep["ok"]
    assert "lost during the push" in res["error"]
    assert rev_parse(repo, "refs/heads/main") is None  # no ref moved to a half-sent pack
    fsck(repo)
    st = status(store)["remotes"][0]
    assert st["last_error"] and st["last_verified"] is None
    # The remote comes back: the next push completes and verifies.
    rep = push(store, git_daemon.url("atocore.git"))
    assert rep["ok"], rep
    assert rev_parse(repo, "main") == store.head()
    fsck(repo)


def test_disk_full_on_git_daemon_remote(store, tmp_path):
    base = tmp_path / "small-disk"
    base.mkdir()
    repo = make_bare(base / "atocore.git")
    daemon = start_daemon(base, fsize_limit=256 * 1024)  # the remote cannot write a file > 256 KiB
    try:
        assert push(store, daemon.url("atocore.git"))["ok"]
        first = rev_parse(repo, "main")
        store.commit(random_files(150, 8000), "Bulk sources")  # > 100 objects: git writes one big pack
        rep = push(store, daemon.url("atocore.git"))
        res = rep["results"][0]
        assert not rep["ok"], res
        assert rev_parse(repo, "main") == first  # the remote did not move
        fsck(repo)
    finally:
        daemon.stop()
    daemon = start_daemon(base, port=daemon.port)  # space freed
    try:
        rep = push(store, daemon.url("atocore.git"))
        assert rep["ok"], rep
        assert rev_parse(repo, "main") == store.head()
        fsck(repo)
    finally:
        daemon.stop()


def test_disk_full_on_local_remote_real_file_size_limit(store, tmp_path):
    """The push runs in a process that cannot write files over 256 KiB (RLIMIT_FSIZE, SIGXFSZ
    ignored): the kernel fails the remote pack write with EFBIG, as a full disk would fail it."""
    remote = make_bare(tmp_path / "laptop.git")
    store.commit(random_files(100, 8000), "Bulk sources")

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    proc = subprocess.run([sys.executable, "-m", "atocore", "backup", "push", str(remote)],
                          capture_output=True, text=True, env={**os.environ, "ATOCORE_STORE": str(store.path)},
                          preexec_fn=small_disk, timeout=120)
    assert proc.returncode == 1
    assert "no space left" in proc.stderr
    assert rev_parse(remote, "main") is None
    fsck(remote)
    assert push(store, str(remote))["ok"]
    assert rev_parse(remote, "main") == store.head()
    fsck(remote)


def test_disk_full_injected_enospc(store, tmp_path, monkeypatch):
    """ENOSPC injected where dulwich writes the pushed pack into the remote object store."""
    from dulwich.object_store import DiskObjectStore

    remote = make_bare(tmp_path / "laptop.git")
    real = DiskObjectStore.add_pack_data

    def full(self, *a, **kw):
        if str(self.path).startswith(str(remote)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **kw)

    monkeypatch.setattr(DiskObjectStore, "add_pack_data", full)
    rep = push(store, str(remote))
    assert not rep["ok"] and "no space left" in rep["results"][0]["error"]
    assert rev_parse(remote, "main") is None
    monkeypatch.setattr(DiskObjectStore, "add_pack_data", real)
    assert push(store, str(remote))["ok"]
    fsck(remote)
