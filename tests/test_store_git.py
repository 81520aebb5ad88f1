"""Interoperability with the real git CLI, and many writer processes at once."""

from __future__ import annotations

import subprocess

from atocore.memories import add_memory, invalidate_memory, list_memories, supersede_memory
from atocore.review import approve_review, reject_review
from atocore.state import propose_state
from atocore.store import Store

from .fixtures_store import WRITER, fsck, git, python


def test_git_clone_log_and_fsck_after_a_mixed_workload(store, tmp_path):
    a = add_memory(store, "The lens mount is M42.", "knowledge", project="optics")
    b = supersede_memory(store, a.id, "The lens mount is M42x0.75.", author="Ann <ann@example.org>")
    invalidate_memory(store, b.id, "wrong thread pitch")
    propose_state(store, "optics", "lead", "Alice", category="contact", approve=True)
    p = propose_state(store, "optics", "focus", "alignment", category="focus")
    approve_review(store, p.id, "Bob <bob@example.org>")
    reject_review(store, propose_state(store, "optics", "focus", "nothing").id, "not now", "Bob <bob@example.org>")
    store.commit({"sources/optics/docs/alignment.md": "# Alignment\n\nÜmlauts are fine.\n".encode()}, "Stage a source")
    store.commit({"sources/optics/docs/alignment.md": None}, "Unstage it")
    # a folder big enough (> 32 kB tree) to take the uncompressed-object and splice paths
    store.commit({f"sources/optics/bulk/note-{i:04d}.txt": f"note {i}\n".encode() for i in range(1200)}, "Bulk")
    store.commit({"sources/optics/bulk/note-0600.txt": b"changed\n", "sources/optics/bulk/note-0000.txt": None,
                  "sources/optics/bulk/note-9999.txt": b"last\n"}, "Splice")
    store.commit({"sources/optics/bulk/note-0601.txt": None}, "Remove one")
    fsck(store.path)

    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    assert (work / "atocore.yaml").is_file() and (work / "state" / "optics.yaml").is_file()
    assert (work / "memories" / f"{a.id}.md").read_text().startswith("---\nid: ")
    subjects = git("log", "--format=%s", cwd=work).stdout.splitlines()
    assert subjects[0] == "Remove one" and subjects[-1] == "Create AtoCore store"
    assert any(s.startswith("Approve review") for s in subjects)
    assert len(subjects) == len(store.log())
    assert git("log", "--format=%an <%ae>", "-1", f"--grep=Supersede", cwd=work).stdout.strip() == "Ann <ann@example.org>"
    assert git("rev-parse", "HEAD", cwd=work).stdout.strip() == store.head()
    bulk = sorted(p.name for p in (work / "sources" / "optics" / "bulk").iterdir())
    assert len(bulk) == 1199 and bulk[0] == "note-0001.txt" and bulk[-1] == "note-9999.txt"
    assert (work / "sources" / "optics" / "bulk" / "note-0600.txt").read_text() == "changed\n"
    assert "note-0601.txt" not in bulk
    git("fsck", "--strict", "--no-progress", cwd=work)
    # a git gc/repack by a person (or by maintenance) keeps the store readable
    git("gc", "-q", "--aggressive", cwd=store.path)
    fsck(store.path)
    again = Store(store.path)
    assert {m.id for m in list_memories(again)} == {a.id, b.id}
    add_memory(again, "written after gc", "episodic")
    fsck(store.path)


def test_eight_processes_writing_at_once_lose_nothing(store):
    procs = [subprocess.Popen(python(WRITER, str(store.path), str(n), "50"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for n in range(8)]
    acked: set[str] = set()
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        acked.update(out.split())
    assert len(acked) == 400
    fresh = Store(store.path)
    assert {m.id for m in list_memories(fresh)} == acked
    log = fresh.log()
    assert len(log) == 401
    assert all(len(c.parents) == 1 for c in log[:-1])  # linear history: one parent each
    assert git("rev-list", "--count", "--merges", "main", cwd=store.path).stdout.strip() == "0"
    fsck(store.path)


def test_loose_objects_are_packed_in_the_background_when_idle(store, monkeypatch):
    from atocore.store import maintain

    ids = [add_memory(store, f"note {i}", "episodic").id for i in range(5)]
    monkeypatch.setattr(maintain, "MAX_LOOSE_OBJECTS", -1)  # anything counts as "piled up"
    monkeypatch.setattr(maintain, "MAX_LOOSE_BYTES", -1)
    assert maintain.pack_count(store.objects_dir) == 0
    ids.append(add_memory(store, "this write starts the background job", "episodic").id)
    maintain.wait_idle(store.path)  # the job waits for ~2 s without writes, then repacks
    assert maintain.pack_count(store.objects_dir) == 1
    fanout = [p for p in store.objects_dir.iterdir() if len(p.name) == 2]
    assert len(fanout) == 256 and not any(any(p.iterdir()) for p in fanout)  # no loose objects left
    fresh = Store(store.path)
    assert {m.id for m in list_memories(fresh)} >= set(ids)
    add_memory(fresh, "written after the repack", "episodic")
    assert maintain.pack(store.path)["packed"] is True
    fsck(store.path)


def test_unreachable_loose_objects_are_consolidated_into_a_cruft_pack(store, monkeypatch):
    """A rejected proposal's objects are unreachable: ``repack -d`` leaves them loose (forever,
    and they would keep the pile-up check firing), so the pass consolidates into a cruft pack."""
    from atocore.review import propose, reject_review
    from atocore.store import maintain

    for i in range(3):
        r = propose(store, {f"sources/p/n{i}.md": f"proposal {i}\n".encode()}, f"Proposal {i}")
        reject_review(store, r.id, "not needed", "Bob <bob@example.org>")
    add_memory(store, "kept", "episodic")
    monkeypatch.setattr(maintain, "MAX_LOOSE_OBJECTS", -1)  # still "piled up" after the incremental pass
    assert maintain.run_policy(store.path) == 0
    fanout = [p for p in store.objects_dir.iterdir() if len(p.name) == 2]
    assert not any(any(p.iterdir()) for p in fanout)  # nothing left loose, unreachable objects included
    if maintain._git_version() >= (2, 37):
        assert list((store.objects_dir / "pack").glob("*.mtimes"))  # the cruft pack keeps them (2 weeks)
    assert [m.text for m in list_memories(Store(store.path))] == ["kept"]
    fsck(store.path)
