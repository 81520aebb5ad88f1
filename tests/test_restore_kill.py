"""kill -9 during a restore, at each point where it could hurt: nothing is lost, main is
either the old commit or the complete restore commit, and a retry completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from atocore.backup import list_snapshots
from atocore.cli.follow import restore  # the restore, then the index brought to it: `atocore restore`
from atocore.memories import add_memory

from .fixtures_backup import fsck

RESTORE_WITH_PAUSE = textwrap.dedent("""
    import sys, time
    import atocore.backup.restore, atocore.cli.follow
    mod = sys.modules["atocore.backup.restore"]
    follow = sys.modules["atocore.cli.follow"]
    from atocore.store import open_store
    point = sys.argv[3]

    def pause():
        print("paused", flush=True)
        time.sleep(120)

    if point == "after-snapshot":
        real_snapshot = mod.snapshot
        def snap(*a, **kw):
            tag = real_snapshot(*a, **kw)
            pause()
        mod.snapshot = snap
    elif point == "before-main-moves":
        from dulwich.refs import DiskRefsContainer
        real_set = DiskRefsContainer.set_if_equals
        def set_if_equals(self, name, old, new, *a, **kw):
            if name == b"refs/heads/main":
                pause()  # the restore commit's objects are written, main not moved yet
            return real_set(self, name, old, new, *a, **kw)
        DiskRefsContainer.set_if_equals = set_if_equals
    elif point == "before-reindex":
        follow.reindex = lambda store: pause()
    print(follow.restore(open_store(sys.argv[1]), sys.argv[2]))
""")


@pytest.fixture
def history(store):
    from atocore.retrieval import open_retriever

    good = store.head()
    mem = add_memory(store, "The cryostat compressor hums at 60 Hz when the coldhead is loaded", "knowledge")
    store.commit({f"sources/misc/n{i}.md": f"# Note {i}\n\nnote {i}\n".encode() for i in range(50)}, "Notes")
    open_retriever(store).update()
    return store, good, store.head(), mem


def _run_until_paused(store, rev: str, point: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", RESTORE_WITH_PAUSE, str(store.path), rev, point],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if line != "paused":
        proc.kill()
        raise AssertionError(f"restore did not reach {point}: {line} {proc.communicate()}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("point", ["after-snapshot", "before-main-moves"])
def test_kill_before_main_moves(history, point):
    from atocore.retrieval import open_retriever

    store, good, bad, mem = history
    _run_until_paused(store, good, point)
    assert store.head() == bad  # main untouched: nothing half-done is visible
    fsck(store.path)
    if point == "after-snapshot":
        assert list_snapshots(store)[0].commit == bad  # the safety snapshot is already there
    rep = restore(store, good)  # the retry completes (the writer lock died with the process)
    assert store.tree_id() == store.tree_id(good)
    assert rep["index"]["ok"]
    assert mem.id not in [h.id for h in open_retriever(store).search("cryostat compressor coldhead")]
    assert bad in {c.sha for c in store.log()}  # and nothing was lost
    fsck(store.path)


def test_kill_after_commit_before_reindex(history):
    from atocore.retrieval import open_retriever

    store, good, bad, mem = history
    r = open_retriever(store)
    _run_until_paused(store, good, "before-reindex")
    assert store.tree_id() == store.tree_id(good) and store.info(store.head()).parents == (bad,)
    fsck(store.path)
    # The index still reflects the old main; the next update (the service's watcher, or any
    # command that reads the index) brings it to the restored main.
    assert r.status()["stale"]
    r.update()
    assert mem.id not in [h.id for h in r.search("cryostat compressor coldhead")]
    assert restore(store, good)["nothing_to_do"]
