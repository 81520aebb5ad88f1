"""Restore: a new commit with REV's tree, a safety snapshot first, the index brought along."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from atocore.backup import hold_service_lock, list_snapshots, service_running
from atocore.cli.follow import restore  # the restore, then the index brought to it: `atocore restore`
from atocore.errors import Busy, NotFound
from atocore.memories import add_memory

from .conftest import run_cli
from .fixtures_backup import fsck


def _ids(hits):
    return [h.id for h in hits]


def test_restore_is_a_new_commit_with_the_old_tree(store):
    m1 = add_memory(store, "keep this one", "knowledge")
    good = store.head()
    m2 = add_memory(store, "a mistake", "knowledge")
    store.commit({m1.path: store.read(m1.path).replace(b"keep this one", b"damaged")}, "Bad edit")
    bad = store.head()
    rep = restore(store, good)
    assert rep["before"] == bad and rep["commit"] == store.head()
    assert rep["removed"] == [m2.path] and rep["changed"] == [m1.path] and rep["added"] == []
    assert store.tree_id("main") == store.tree_id(good)
    info = store.info(store.head())
    assert info.parents == (bad,)  # history kept: the bad commits are still there
    assert good[:12] in info.summary
    snap = list_snapshots(store)[0]
    assert snap.commit == bad and snap.tag == rep["snapshot"] and "pre-restore" in snap.reason
    fsck(store.path)


def test_dry_run_changes_nothing(store):
    add_memory(store, "one", "knowledge")
    m = add_memory(store, "two", "knowledge")
    head = store.head()
    rep = restore(store, "main~1", dry_run=True)
    assert rep["removed"] == [m.path] and rep["commit"] is None
    assert store.head() == head and list_snapshots(store) == []
    out = run_cli("restore", "main~1", "--dry-run", store=store).stdout
    assert f"- {m.path}" in out and "would change 1 paths" in out
    assert store.head() == head


def test_restore_to_current_content_is_a_no_op(store):
    add_memory(store, "x", "knowledge")
    rep = restore(store, "main")
    assert rep["nothing_to_do"] and rep["commit"] is None


def test_resolve_suffixes_and_errors(store):
    add_memory(store, "a", "knowledge")
    add_memory(store, "b", "knowledge")
    log = [c.sha for c in store.log()]
    assert store.resolve("main~2") == log[2]
    assert store.resolve("main^") == log[1]
    assert store.resolve("main~1^") == log[2]
    with pytest.raises(NotFound, match="not found"):
        store.resolve("main~10")
    with pytest.raises(NotFound):
        restore(store, "no-such-rev")


def test_restore_updates_the_index(store):
    from atocore.retrieval import open_retriever

    r = open_retriever(store)
    r.update()
    before = store.head()
    m = add_memory(store, "The vacuum chamber gasket is Viton, replaced in March", "knowledge")
    r.update()
    assert m.id in _ids(r.search("vacuum chamber gasket Viton"))
    rep = restore(store, before)
    assert rep["index"]["ok"], rep["index"]
    assert m.id not in _ids(r.search("vacuum chamber gasket Viton"))
    rep = restore(store, rep["before"])
    assert m.id in _ids(r.search("vacuum chamber gasket Viton"))


def test_restore_refused_while_another_process_serves(store):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from atocore.store import open_store; from atocore.backup import hold_service_lock;"
         "hold_service_lock(open_store(sys.argv[1])); print('held', flush=True); time.sleep(60)", str(store.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        info = service_running(store)
        assert info and info["pid"] == holder.pid and not info["self"]
        add_memory(store, "x", "knowledge")
        with pytest.raises(Busy, match="POST /admin/restore"):
            restore(store, "main~1")
        proc = run_cli("restore", "main~1", store=store, check=False)
        assert proc.returncode != 0 and "POST /admin/restore" in proc.stderr
        assert restore(store, "main~1", dry_run=True)["removed"]  # a dry run only reads
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # The service died (even by SIGKILL): the kernel dropped its lock; restore is allowed again.
    assert service_running(store) is None
    assert restore(store, "main~1")["commit"]


def test_service_restores_itself(store):
    add_memory(store, "x", "knowledge")
    with hold_service_lock(store):
        assert service_running(store)["self"]
        rep = restore(store, "main~1")  # what POST /admin/restore does, in the serving process
        assert rep["commit"]
    assert service_running(store) is None


def test_second_service_is_refused(store):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from atocore.store import open_store; from atocore.backup import hold_service_lock;"
         "hold_service_lock(open_store(sys.argv[1])); print('held', flush=True); time.sleep(60)", str(store.path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=f"pid {holder.pid}"):
            hold_service_lock(store)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    hold_service_lock(store).release()
