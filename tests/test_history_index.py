"""The path history index gives the same answer as walking git: built incrementally, rebuilt
from scratch, after a restore, after pushes (fast-forward and forced) by the real git CLI, and
after its file is corrupted."""

from __future__ import annotations

import pytest

from atocore.backup.restore import restore
from atocore.memories import add_memory, invalidate_memory, memory_history, supersede_memory
from atocore.review import approve_review, propose, reject_review
from atocore.state import propose_state, state_history
from atocore.store import Store
from atocore.store.history import FILE_NAME

from .fixtures_store import git

BOB = "Bob Reviewer <bob@example.org>"


def _walk(store: Store, path: str, rev: str = "main", until_added: bool = False) -> list[str]:
    """The answer without the index: the first-parent walk over every commit."""
    return [c.sha for c in store._path_log(store.resolve(rev), path, None, until_added)]


def _indexed(store: Store, path: str, rev: str = "main", until_added: bool = False) -> list[str]:
    shas = store.history.lookup(store.resolve(rev), path, None, until_added)
    assert shas is not None, f"{rev} should be answered from the index"
    return shas


def _paths(store: Store) -> list[str]:
    files = store.files("main")
    folders = {p.rsplit("/", 1)[0] for p in files if "/" in p}
    return sorted(files) + sorted(folders) + ["memories/never-existed.md", "nowhere"]


def _check_all(store: Store, revs=("main",)) -> None:
    for rev in revs:
        for path in _paths(store):
            assert _indexed(store, path, rev) == _walk(store, path, rev), (rev, path)
            if path.startswith("memories/"):
                assert _indexed(store, path, rev, True) == _walk(store, path, rev, True), (rev, path)
            # through the public call (a folder's "until added" is walked, not indexed)
            assert [c.sha for c in store.log(rev, path=path, until_added=True)] == _walk(store, path, rev, True)


def _year_in_small(store: Store) -> dict:
    """A bit of everything that makes commits: memories, supersede/invalidate, reviews merged
    and rejected, a multi-file refresh-like commit with deletions, folders replaced by files."""
    first = add_memory(store, "Alice prefers metric units", "preference", project="optics")
    store.history.update()  # an index that will have to catch up from here
    mems = [add_memory(store, f"note {i}: torque the lens mount", "knowledge") for i in range(5)]
    new = supersede_memory(store, mems[0].id, "note 0: torque the lens mount to 2 Nm")
    invalidate_memory(store, mems[1].id, "wrong supplier")
    propose_state(store, "optics", "lens", "50 mm", approve=True, reviewer=BOB)
    p = propose(store, {"sources/p/a.md": b"draft\n"}, "A note")
    store.commit({"sources/p/b.md": b"main moved meanwhile\n"}, "Unrelated change on main")
    approve_review(store, p.id, BOB)
    propose_state(store, "optics", "lens", "35 mm", approve=True, reviewer=BOB)
    r = propose(store, {"sources/p/c.md": b"nope\n"}, "Rejected note")
    reject_review(store, r.id, "not needed", BOB)
    store.commit({f"sources/optics/f{i}.md": f"file {i}\n".encode() for i in range(20)}, "Refresh sources")
    store.commit({**{f"sources/optics/f{i}.md": None for i in range(5)}, "sources/optics/f7.md": b"changed\n"},
                 "Refresh sources again")
    store.commit({"sources/p/b.md/inner.md": b"a folder now\n"}, "File becomes a folder")
    store.commit({"sources/p/b.md": b"a file again\n"}, "Folder becomes a file")
    return {"first": first, "new": new, "mems": mems}


def test_incremental_equals_rebuilt_equals_walk(store):
    made = _year_in_small(store)
    assert store.history.update() == "update"  # caught up from where it was stamped
    _check_all(store, revs=("main", "main~3", "main~9"))
    # memory/state history through the public functions, answered from the index
    assert [c.sha for c in memory_history(store, made["first"].id)] == _walk(store, made["first"].path, until_added=True)
    assert [c.sha for c in state_history(store, "optics")] == _walk(store, "state/optics.yaml")
    assert len(state_history(store, "optics")) == 2  # the two approving merges, not the branch commits
    assert [c.sha for c in store.log("main", path="sources/optics", limit=2)] == _walk(store, "sources/optics")[:2]
    incremental = {p: _indexed(store, p) for p in _paths(store)}
    (store.index_dir / FILE_NAME).unlink()
    assert store.history.update() == "rebuild"
    assert {p: _indexed(store, p) for p in _paths(store)} == incremental


def test_a_rev_off_the_first_parent_chain_is_walked(store):
    propose_state(store, "optics", "lens", "50 mm", approve=True, reviewer=BOB)
    branch_commit = store.resolve("main^2")  # the proposal commit, only reachable as a second parent
    assert store.history.lookup(branch_commit, "state/optics.yaml") is None
    assert [c.sha for c in store.log(branch_commit, path="state/optics.yaml")] == [branch_commit]


def test_survives_a_restore(store):
    _year_in_small(store)
    store.history.update()
    restore(store, "main~6")
    assert store.history.update() == "update"  # a restore is a new commit on main
    _check_all(store)


def test_survives_pushes_by_the_git_cli_fast_forward_and_forced(store, tmp_path):
    _year_in_small(store)
    store.history.update()
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    (work / "sources" / "p").mkdir(parents=True, exist_ok=True)
    (work / "sources" / "p" / "pushed.md").write_text("from a clone\n")
    git("add", "sources/p/pushed.md", cwd=work)
    git("commit", "-q", "-m", "A note pushed by a person", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    assert store.history.update() == "update"
    _check_all(store)
    # rewrite main: drop the last three commits and push something else over them
    git("reset", "-q", "--hard", "HEAD~3", cwd=work)
    (work / "sources" / "p" / "other.md").write_text("history rewritten\n")
    git("add", "sources/p/other.md", cwd=work)
    git("commit", "-q", "-m", "Rewritten history", cwd=work)
    git("push", "-q", "--force", "origin", "main", cwd=work)
    assert store.history.update() == "rebuild"  # the stamp is no longer on main's history
    _check_all(store)


@pytest.mark.parametrize("damage", [b"not a database at all" * 100, b""])
def test_a_corrupt_index_file_is_rebuilt(store, damage):
    _year_in_small(store)
    store.history.update()
    path = store.index_dir / FILE_NAME
    path.write_bytes(damage)
    fresh = Store(store.path)
    assert fresh.history.update() == "rebuild"
    _check_all(fresh)


def test_an_index_with_rows_gone_is_caught_by_its_stamp(store):
    """Stamped state is what counts: an index stamped at a commit main no longer has is rebuilt."""
    _year_in_small(store)
    store.history.update()
    import sqlite3

    db = sqlite3.connect(store.index_dir / FILE_NAME)
    db.execute("UPDATE meta SET value = ? WHERE key = 'head'", ("0" * 40,))
    db.commit()
    db.close()
    assert Store(store.path).history.update() == "rebuild"
    _check_all(store)


def _slow_branch_point(store: Store, head: str) -> tuple[str | None, set[str]]:
    """The reference answer from the real git CLI: ``git merge-base`` and ``git rev-list``."""
    main = store.head()
    base = git("merge-base", main, head, cwd=store.path, check=False).stdout.strip() or None
    own = set(git("rev-list", head, f"^{main}", cwd=store.path).stdout.split())
    return base, own


def test_review_branch_points_from_the_index_match_the_walk(store, tmp_path):
    _year_in_small(store)
    old = propose(store, {"sources/p/old.md": b"proposed long ago\n"}, "Old proposal")
    for i in range(5):
        add_memory(store, f"main moves on {i}", "knowledge")
    fresh = propose(store, {"sources/p/new.md": b"just now\n"}, "Fresh proposal")
    # a person's branch built on top of a review branch that was merged meanwhile
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    git("fetch", "-q", "origin", f"review/{old.id}", cwd=work)
    git("checkout", "-q", "-b", "stacked", "FETCH_HEAD", cwd=work)
    (work / "sources" / "p").mkdir(parents=True, exist_ok=True)
    (work / "sources" / "p" / "stacked.md").write_text("on top of the old proposal\n")
    git("add", "sources/p/stacked.md", cwd=work)
    git("commit", "-q", "-m", "Stacked proposal", cwd=work)
    git("push", "-q", "origin", "stacked:review/stacked", cwd=work)
    approve_review(store, old.id, BOB)
    for head in (store.head(f"refs/heads/review/{fresh.id}".encode()), store.head(b"refs/heads/review/stacked"),
                 store.resolve("main~2")):
        fast = store.history.branch_point(head, store.head())
        slow = _slow_branch_point(store, head)
        if fast is not None:
            assert (fast[0], set(fast[1])) == slow
    # the simple cases are answered from the index
    assert store.history.branch_point(store.head(f"refs/heads/review/{fresh.id}".encode()), store.head()) is not None
    views = {p.id: p for p in __import__("atocore.review", fromlist=["list_reviews"]).list_reviews(store)}
    assert views["stacked"].paths == ["sources/p/stacked.md"] and views["stacked"].commits == 1
    assert views[fresh.id].approvable


def _walked_review_ids(store: Store) -> set[str]:
    """What capture/extract.py's walk finds: every commit reachable from main, its trailers."""
    import re

    return {m for c in store.log() for m in re.findall(r"^Review-Id:\s*(\S+)", c.message, re.M)}


def test_review_ids_from_the_index_match_the_walk(store, tmp_path):
    """The reviews already approved or rejected (issue 14: extraction skips their turns without
    walking every commit): incremental, rebuilt, after a forced push, and through Known."""
    from atocore.capture.extract import Known

    _year_in_small(store)
    incremental = store.history.review_ids()
    assert incremental == _walked_review_ids(store) and len(incremental) >= 4
    p = propose(store, {"sources/p/late.md": b"late\n"}, "A late note")
    assert p.id not in store.history.review_ids()  # open: not reviewed yet
    approve_review(store, p.id, BOB)
    assert p.id in store.history.review_ids() and store.history.last_action == "update"
    (store.index_dir / FILE_NAME).unlink()
    assert store.history.review_ids() == _walked_review_ids(store) and store.history.last_action == "rebuild"
    assert Known(store).reviewed == _walked_review_ids(store)
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    git("reset", "-q", "--hard", "HEAD~1", cwd=work)  # drop the approval of the late note
    git("push", "-q", "--force", "origin", "main", cwd=work)
    assert store.history.review_ids() == _walked_review_ids(store)
    assert p.id not in store.history.review_ids()
