"""Review as git branches: propose, approve (merge + Reviewed-by), reject, conflicts, and
branches pushed by a person with the real git CLI."""

from __future__ import annotations

import os

import pytest

from atocore.errors import Conflict, NotFound, ValidationError
from atocore.memories import add_memory, list_memories
from atocore.records import Memory
from atocore.review import approve_review, get_review, list_reviews, propose, reject_review
from atocore.state import get_state, propose_state, propose_state_removal
from atocore.store import REVIEW_PREFIX

from .fixtures_store import fsck, git

BOB = "Bob Reviewer <bob@example.org>"


def test_propose_then_approve_merges_with_reviewed_by(store):
    main0 = store.head()
    p = propose_state(store, "optics", "lead", "Alice", category="contact", author="Ann <ann@example.org>")
    assert store.head() == main0  # nothing on main until approved
    assert get_state(store, "optics").entries == []
    assert [r.id for r in list_reviews(store)] == [p.id]
    assert p.kind == "state" and p.paths == ["state/optics.yaml"] and p.problems == [] and p.approvable
    assert p.author == "Ann <ann@example.org>" and p.base == main0

    sha = approve_review(store, p.id, BOB)
    assert store.head() == sha
    info = store.info(sha)
    assert info.parents == (main0, p.head)
    assert info.message.rstrip().endswith(f"Reviewed-by: {BOB}")
    assert info.author == BOB
    assert get_state(store, "optics").get("lead").value == "Alice"
    assert list_reviews(store) == [] and store.head(REVIEW_PREFIX + p.id.encode()) is None
    with pytest.raises(NotFound):
        get_review(store, p.id)
    fsck(store.path)


def test_reject_deletes_the_branch_and_records_why(store):
    p = propose_state(store, "optics", "lead", "Mallory")
    tree = store.tree_id()
    sha = reject_review(store, p.id, "Mallory left the team", BOB)
    info = store.info(sha)
    assert info.summary.startswith(f"Reject review {p.id}")
    assert "Reason: Mallory left the team" in info.message and f"Rejected-by: {BOB}" in info.message
    assert store.tree_id() == tree  # an empty change: only the record of the decision
    assert list_reviews(store) == []
    with pytest.raises(ValidationError, match="reason"):
        reject_review(store, propose_state(store, "optics", "lead", "Eve").id, "", BOB)


def test_conflict_is_reported_and_nothing_is_merged(store):
    a = propose_state(store, "optics", "focus", "alignment", category="focus")
    b = propose_state(store, "optics", "focus", "thermal drift", category="focus")
    approve_review(store, a.id, BOB)
    head = store.head()
    assert get_review(store, b.id).conflicts == ["state/optics.yaml"]
    with pytest.raises(Conflict, match="no longer merges: main changed state/optics.yaml"):
        approve_review(store, b.id, BOB)
    assert store.head() == head  # nothing half merged
    assert get_review(store, b.id).head == b.head  # the proposal is still there to reject or redo
    assert get_state(store, "optics").get("focus").value == "alignment"


def test_state_proposals_for_different_keys_merge_entry_by_entry(store):
    propose_state(store, "optics", "summary", "Bench optics", category="summary", approve=True)
    a = propose_state(store, "optics", "lead", "Alice", category="contact")
    b = propose_state(store, "optics", "focus", "alignment", category="focus")
    c = propose_state(store, "optics", "summary", "Bench optics and lasers", category="summary")
    approve_review(store, a.id, BOB)
    assert get_review(store, b.id).conflicts == [] and get_review(store, b.id).resolved
    approve_review(store, b.id, BOB)
    approve_review(store, c.id, BOB)
    state = get_state(store, "optics")
    assert [(e.key, e.value) for e in state.entries] == [
        ("summary", "Bench optics and lasers"), ("lead", "Alice"), ("focus", "alignment")]
    d = propose_state(store, "optics", "lead", "Bob")
    e = propose_state(store, "optics", "lead", "Carol")
    approve_review(store, d.id, BOB)
    assert get_review(store, e.id).conflicts == ["state/optics.yaml"]  # same key: a real conflict
    fsck(store.path)


def test_unrelated_changes_on_main_merge_cleanly(store):
    p = propose_state(store, "optics", "lead", "Alice")
    m = add_memory(store, "written while the proposal waited", "episodic")
    approve_review(store, p.id, BOB)
    assert get_state(store, "optics").get("lead").value == "Alice"
    assert [x.id for x in list_memories(store)] == [m.id]


def test_approve_shortcut_records_both_steps(store):
    main0 = store.head()
    p = propose_state(store, "optics", "lead", "Alice", approve=True, reviewer=BOB)
    assert p.status == "approved" and p.result == store.head()
    merge = store.info(store.head())
    proposal = store.info(merge.parents[1])
    assert merge.parents[0] == main0 and proposal.parents == (main0,)
    assert proposal.summary == "Set optics state lead" and "Review-Kind: state" in proposal.message
    assert f"Reviewed-by: {BOB}" in merge.message
    assert list_reviews(store) == []


def test_state_changes_and_removal(store):
    propose_state(store, "optics", "lead", "Alice", approve=True)
    with pytest.raises(ValidationError, match="already has exactly this value"):
        propose_state(store, "optics", "lead", "Alice")
    p = propose_state(store, "optics", "lead", "Bob")
    assert "Was: fact lead = Alice" in p.body
    approve_review(store, p.id, BOB)
    propose_state_removal(store, "optics", "lead", "obsolete", approve=True)
    assert get_state(store, "optics").entries == []
    with pytest.raises(NotFound):
        propose_state_removal(store, "optics", "lead")


def test_proposing_what_main_already_has_is_refused(store):
    with pytest.raises(ValidationError, match="nothing to propose"):
        propose(store, {"atocore.yaml": store.read("atocore.yaml")}, "No-op")
    assert list_reviews(store) == []


# ---------------------------------------------------------------- branches pushed by people


@pytest.fixture
def clone(store, tmp_path):
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    git("config", "user.name", "Pat Person", cwd=work)
    git("config", "user.email", "pat@example.org", cwd=work)
    return work


def _memory_file(mid: str, text: str, **over) -> str:
    m = Memory(id=mid, type="knowledge", text=text, project="optics", **over)
    return m.dump().decode()


def test_a_branch_pushed_with_git_shows_up_and_can_be_approved(store, clone):
    git("checkout", "-q", "-b", "review/pat-lens-mount", cwd=clone)
    (clone / "memories").mkdir(exist_ok=True)
    (clone / "memories" / "pat-lens.md").write_text(_memory_file("pat-lens", "The lens mount is M42."))
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Add lens mount fact\n\nFrom the datasheet.", cwd=clone)
    (clone / "state").mkdir(exist_ok=True)
    (clone / "state" / "optics.yaml").write_text("project: optics\nentries:\n- category: fact\n  key: mount\n"
                                                 "  value: M42\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "And the state entry", cwd=clone)
    git("push", "-q", "origin", "review/pat-lens-mount", cwd=clone)

    (r,) = list_reviews(store)
    assert r.id == "pat-lens-mount" and r.title == "Add lens mount fact" and r.body == "From the datasheet."
    assert r.author == "Pat Person <pat@example.org>" and r.kind == "change" and r.commits == 2
    assert r.paths == ["memories/pat-lens.md", "state/optics.yaml"] and r.problems == []
    approve_review(store, "review/pat-lens-mount", BOB)
    assert get_state(store, "optics").get("mount").value == "M42"
    assert [m.id for m in list_memories(store)] == ["pat-lens"]
    fsck(store.path)
    git("pull", "-q", "--ff-only", "origin", "main", cwd=clone) if False else git("fetch", "-q", "origin", cwd=clone)
    log = git("log", "--format=%s%n%b", "origin/main", cwd=clone).stdout
    assert "Approve review pat-lens-mount: Add lens mount fact" in log and f"Reviewed-by: {BOB}" in log


def test_a_bad_pushed_branch_shows_its_problems_and_cannot_be_approved(store, clone):
    turn = b'{"id": "t1", "source": "cc", "session_id": "s1", "prompt": "p", "response": "r"}\n'
    store.commit({"interactions/2026/01/s1.jsonl": turn}, "Capture a turn")
    git("pull", "-q", "origin", "main", cwd=clone)
    git("checkout", "-q", "-b", "review/pat-bad", cwd=clone)
    (clone / "memories").mkdir(exist_ok=True)
    (clone / "memories" / "bad1.md").write_text(_memory_file("bad1", "ok").replace("type: knowledge", "type: gossip"))
    (clone / "memories" / "bad2.md").write_bytes(b"---\nid: bad2\ntype: knowledge\n---\n\xff\xfe\n")
    (clone / "state").mkdir(exist_ok=True)
    (clone / "state" / "optics.yaml").write_text("project: optics\nentries:\n- category: fact\n  key: k\n")
    os.symlink("../atocore.yaml", clone / "memories" / "link.md")
    (clone / "interactions" / "2026" / "01" / "s1.jsonl").write_text('{"id": "t1", "source": "cc", '
                                                                     '"session_id": "s1", "prompt": "edited", "response": "r"}\n')
    (clone / "atocore.yaml").unlink()
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Sloppy changes", cwd=clone)
    git("push", "-q", "origin", "review/pat-bad", cwd=clone)

    (r,) = list_reviews(store)
    assert not r.approvable
    text = "\n".join(r.problems)
    assert "memories/bad1.md: type: 'gossip' is not allowed (allowed: identity" in text
    assert "memories/bad2.md" in text and "not valid UTF-8" in text
    assert "state/optics.yaml: entries[0].value: is required" in text
    assert "memories/link.md: must be a regular file" in text
    assert "atocore.yaml: the store configuration cannot be deleted" in text
    assert "interactions/2026/01/s1.jsonl: captured interactions are append-only" in text
    head = store.head()
    with pytest.raises(Conflict, match="cannot be approved until its problems are fixed"):
        approve_review(store, r.id, BOB)
    assert store.head() == head
    reject_review(store, r.id, "see the problems", BOB)
    assert list_reviews(store) == []
    fsck(store.path)


def test_a_branch_with_unrelated_history_is_a_problem(store, tmp_path):
    other = tmp_path / "other"
    git("init", "-q", "-b", "main", str(other), cwd=tmp_path)
    (other / "notes.md").write_text("hello")
    git("add", "-A", cwd=other)
    git("commit", "-q", "-m", "unrelated", cwd=other)
    git("push", "-q", str(store.path), "main:refs/heads/review/stray", cwd=other)
    (r,) = list_reviews(store)
    assert any("shares no history with main" in p for p in r.problems)
    with pytest.raises(Conflict):
        approve_review(store, "stray", BOB)


def test_approving_an_already_merged_branch_only_tidies_up(store):
    p = propose_state(store, "optics", "lead", "Alice")
    approve_review(store, p.id, BOB)
    head = store.head()
    with store.lock():
        store.set_ref(REVIEW_PREFIX + p.id.encode(), None, p.head)  # as if a crash left the branch behind
    (r,) = list_reviews(store)
    assert "nothing that is not already on main" in r.problems[0]
    assert approve_review(store, p.id, BOB) == head and store.head() == head
    assert list_reviews(store) == []


def test_proposals_cannot_rewrite_captured_interactions(store):
    path = "interactions/2026/01/s1.jsonl"
    turn = b'{"id": "t1", "source": "cc", "session_id": "s1", "prompt": "p", "response": "r"}\n'
    store.commit({path: turn}, "Capture a turn")
    with pytest.raises(ValidationError, match="append-only"):
        propose(store, {path: turn.replace(b'"p"', b'"edited"')}, "Rewrite history")
    more = turn + turn.replace(b"t1", b"t2")
    assert propose(store, {path: more}, "Add a turn").paths == [path]


def test_approve_leaves_open_a_branch_that_got_new_commits_during_the_merge(store, monkeypatch):
    p = propose(store, {"sources/optics/a.md": b"a\n"}, "Add a")
    real_commit = store.commit

    def commit_then_push(*args, **kwargs):
        sha = real_commit(*args, **kwargs)
        # someone's `git push` lands on the review branch meanwhile (it takes no AtoCore lock)
        real_commit({"sources/optics/b.md": b"b\n"}, "Add b too", ref=p.ref.encode())
        return sha

    monkeypatch.setattr(store, "commit", commit_then_push)
    sha = approve_review(store, p.id, BOB)
    monkeypatch.undo()
    assert store.head() == sha and store.read("sources/optics/a.md") == b"a\n"
    assert store.read("sources/optics/b.md") is None  # never reviewed: not merged ...
    assert get_review(store, p.id).paths == ["sources/optics/b.md"]  # ... and still open for review


def test_approve_with_head_refuses_a_branch_that_moved_since_it_was_read(store, clone):
    git("checkout", "-q", "-b", "review/pat-focus", cwd=clone)
    (clone / "memories").mkdir(exist_ok=True)
    (clone / "memories" / "pat-focus.md").write_text(_memory_file("pat-focus", "Focus is at 1200 mm."))
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Focus fact", cwd=clone)
    git("push", "-q", "origin", "review/pat-focus", cwd=clone)
    seen = get_review(store, "pat-focus").head  # what the reviewer read

    # a later commit lands on the branch before the reviewer approves
    (clone / "memories" / "pat-extra.md").write_text(_memory_file("pat-extra", "Unreviewed extra."))
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Sneak in another", cwd=clone)
    git("push", "-q", "origin", "review/pat-focus", cwd=clone)

    main0 = store.head()
    with pytest.raises(Conflict, match="changed since you read it"):
        approve_review(store, "pat-focus", BOB, expect_head=seen[:12])
    assert store.head() == main0 and list_memories(store) == []  # nothing merged
    with pytest.raises(Conflict, match="shorter than 7"):
        approve_review(store, "pat-focus", BOB, expect_head=seen[:4])
    head = get_review(store, "pat-focus").head
    approve_review(store, "pat-focus", BOB, expect_head=head[:12])
    assert sorted(m.id for m in list_memories(store)) == ["pat-extra", "pat-focus"]


def test_views_after_an_approval_match_a_fresh_computation(store):
    """Merge bases are carried forward across approvals only when that is exact: a branch
    stacked on an approved one gets its new base, an unrelated one keeps its base."""
    from dulwich.graph import find_merge_base

    from atocore.review import list_reviews, propose

    store.commit({"sources/p/a.md": b"a"}, "seed")
    first = propose(store, {"sources/p/b.md": b"b"}, "First proposal")
    other = propose(store, {"sources/p/c.md": b"c"}, "Unrelated proposal")
    # a branch built on top of the first proposal's commit (as a person would from a clone)
    stacked_head = store.commit({"sources/p/d.md": b"d"}, "Stacked on the first", ref=b"refs/heads/review/stacked",
                                parents=[first.head])
    before = {p.id: p for p in list_reviews(store)}  # fills the caches
    assert before["stacked"].paths == ["sources/p/b.md", "sources/p/d.md"]
    approve_review(store, first.id, "Rita <rita@example.org>")
    main = store.head()
    for p in list_reviews(store):
        fresh = [b.decode() for b in find_merge_base(store.repo, [main.encode(), p.head.encode()])]
        assert p.base == fresh[0], p.id
    after = {p.id: p for p in list_reviews(store)}
    assert after["stacked"].base == first.head and after["stacked"].paths == ["sources/p/d.md"]
    assert after["stacked"].commits == 1 and after["stacked"].head == stacked_head
    assert after[other.id].base == before[other.id].base and after[other.id].paths == ["sources/p/c.md"]
    approve_review(store, "stacked", "Rita <rita@example.org>")
    assert store.read("sources/p/d.md") == b"d"


def _forget_in_process_caches() -> None:
    """What a fresh CLI process starts with: empty LRUs (the index folder's caches stay)."""
    from atocore import review

    for cache in (review._CONTENT_CACHE, review._BASES, review._NEW_ON_MAIN, review._STATES):
        cache.clear()


def _view(p):
    return (p.id, p.title, p.kind, p.author, p.base, p.head, p.commits, p.paths, p.files, p.problems,
            p.conflicts, p.resolved, p.approvable)


def test_a_fresh_process_lists_reviews_from_the_index_folder_as_computed(store, clone):
    """Review views and state merges are kept on disk for fresh processes: reading them back
    gives what computing gives, a damaged file is recomputed, and conflicts stay conflicts."""
    a = propose_state(store, "optics", "focus", "alignment", category="focus")
    b = propose_state(store, "optics", "focus", "thermal drift", category="focus")
    c = propose_state(store, "optics", "lead", "Alice", category="contact")
    approve_review(store, a.id, BOB)  # b now conflicts with main; c merges entry by entry
    git("fetch", "-q", "origin", cwd=clone)
    git("checkout", "-q", "-b", "review/pat-bad", "origin/main", cwd=clone)
    (clone / "memories").mkdir(exist_ok=True)
    (clone / "memories" / "bad1.md").write_text(_memory_file("bad1", "ok").replace("type: knowledge", "type: gossip"))
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Sloppy memory", cwd=clone)
    git("push", "-q", "origin", "review/pat-bad", cwd=clone)

    _forget_in_process_caches()
    computed = [_view(p) for p in list_reviews(store)]
    views = store.index_dir / "review-views"
    assert len(list(views.glob("*.json"))) >= 3 and (store.index_dir / "review-merges.json").is_file()
    _forget_in_process_caches()
    assert [_view(p) for p in list_reviews(store)] == computed  # read back from disk
    by_id = {v[0]: v for v in computed}
    assert by_id[b.id][10] == ["state/optics.yaml"] and not by_id[b.id][12]  # the conflict
    assert by_id[c.id][11] and by_id[c.id][12]  # merged entry by entry
    assert any("gossip" in problem for problem in by_id["pat-bad"][9]) and not by_id["pat-bad"][12]

    for f in views.glob("*.json"):
        f.write_text("{not json")
    (store.index_dir / "review-merges.json").write_text("[]")
    _forget_in_process_caches()
    assert [_view(p) for p in list_reviews(store)] == computed

    # approval recomputes: a view file edited to hide the gate's problems does not get a branch in
    import json

    for f in views.glob("*.json"):
        if f.read_text() == "{not json":
            continue  # a view no listing uses any more (the approved review's)
        d = json.loads(f.read_text())
        d["problems"] = []
        f.write_text(json.dumps(d))
    _forget_in_process_caches()
    head = store.head()
    with pytest.raises(Conflict, match="refused by the gate"):
        approve_review(store, "pat-bad", BOB)
    assert store.head() == head
