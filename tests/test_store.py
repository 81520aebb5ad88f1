"""The store's one commit path, reading at any revision, and memories on main."""

from __future__ import annotations

import threading

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from atocore.errors import Conflict, NotFound, StoreError, ValidationError
from atocore.memories import (add_memory, get_memory, invalidate_memory, list_memories, memory_history,
                              supersede_memory)
from atocore.records import Memory, dump_front_matter, parse_memory, split_front_matter
from atocore.store import MAIN, Store, init_store, open_store
from atocore.store.objects import RawTree

from .fixtures_store import fsck


def test_init_creates_a_bare_store_with_a_first_commit(tmp_path):
    store, created = init_store(tmp_path / "s")
    assert created and store.repo.bare
    assert store.read("atocore.yaml").startswith(b"# AtoCore store configuration")
    assert [c.summary for c in store.log()] == ["Create AtoCore store"]
    again, created_again = init_store(tmp_path / "s")
    assert not created_again and again.head() == store.head()
    fsck(store.path)


def test_init_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="is not empty and is not an AtoCore store"):
        init_store(tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["notes.txt"]


def test_open_store_needs_a_path(tmp_path):
    with pytest.raises(StoreError, match="pass --store PATH or set ATOCORE_STORE"):
        open_store(None)
    with pytest.raises(StoreError, match="no store at"):
        open_store(tmp_path / "missing")


def test_every_write_is_one_commit_and_readable_at_any_revision(store):
    first = add_memory(store, "The lens mount is M42.", "knowledge", project="optics")
    rev1 = store.head()
    new = supersede_memory(store, first.id, "The lens mount is M42x0.75.")
    rev2 = store.head()
    invalidate_memory(store, new.id, "the mount was changed to C-mount")
    assert len(store.log()) == 4
    assert get_memory(store, first.id, rev=rev1).status == "active"
    assert get_memory(store, first.id).status == "superseded"
    assert get_memory(store, new.id, rev=rev2).status == "active"
    assert get_memory(store, new.id).status == "invalid"
    assert get_memory(store, new.id).supersedes == first.id
    assert [m.id for m in list_memories(store, rev=rev1)] == [first.id]
    assert [m.id for m in list_memories(store, status="active", rev="main~1")] == [new.id]
    with pytest.raises(NotFound):
        get_memory(store, new.id, rev=rev1)
    hist = memory_history(store, new.id)
    assert [c.summary.split()[0] for c in hist] == ["Invalidate", "Supersede"]
    assert "Reason: the mount was changed to C-mount" in hist[0].message
    # supersede touched both files in ONE commit
    assert {c.path for c in store.diff(rev1, rev2)} == {first.path, new.path}


def test_supersede_and_invalidate_refuse_dead_memories(store):
    m = add_memory(store, "a", "knowledge")
    supersede_memory(store, m.id, "b")
    with pytest.raises(Conflict, match="already superseded"):
        supersede_memory(store, m.id, "c")
    with pytest.raises(ValidationError, match="reason"):
        invalidate_memory(store, m.id, " ")
    with pytest.raises(NotFound):
        invalidate_memory(store, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "gone")


def test_list_filters_and_skips_invalid_files(store):
    a = add_memory(store, "a", "knowledge", project="optics")
    add_memory(store, "b", "preference", project="robot")
    store.commit({"memories/broken.md": b"no front matter"}, "a bad file (as a push could bring)")
    assert [m.id for m in list_memories(store, project="optics")] == [a.id]
    assert [m.type for m in list_memories(store, type="preference")] == ["preference"]
    assert len(list_memories(store)) == 2
    with pytest.raises(ValidationError, match="allowed"):
        list_memories(store, status="alive")


def test_commit_details(store):
    base = store.head()
    assert store.commit({"notes/a.md": b"x"}, "add a", author="Ann <ann@example.org>")
    info = store.info(store.head())
    assert info.author == "Ann <ann@example.org>" and info.parents == (base,)
    assert store.commit({"notes/a.md": b"x"}, "same content") is None  # nothing changed -> no commit
    assert store.commit({}, "record a decision", allow_empty=True) is not None
    store.commit({"notes/a.md": None, "notes/b/c.md": b"c"}, "move")
    assert store.read("notes/a.md") is None and store.read("notes/b/c.md") == b"c"
    store.commit({"notes/b/c.md": None}, "delete the last file")
    assert not any(p.startswith("notes/") for p in store.files())
    with pytest.raises(ValidationError, match="also written as a file"):
        store.commit({"x": b"1", "x/y": b"2"}, "clash")
    with pytest.raises(ValidationError, match="must be bytes"):
        store.commit({"x": "text"}, "not bytes")
    with pytest.raises(NotFound):
        store.resolve("no-such-branch")
    fsck(store.path)


def test_compare_and_swap_refuses_a_moved_ref(store):
    head = store.head()
    store.commit({"a": b"1"}, "one")
    with store.lock():
        with pytest.raises(Conflict):
            store.set_ref(MAIN, head, head)  # main is no longer at head
        store.set_ref(b"refs/heads/review/x", None, head)  # create: must not exist yet
        with pytest.raises(Conflict):
            store.set_ref(b"refs/heads/review/x", None, head)
        store.set_ref(b"refs/heads/review/x", head, None)  # delete with CAS
    assert store.head(b"refs/heads/review/x") is None
    assert store.refs(b"refs/heads/") == {"refs/heads/main": store.head()}


def test_threads_never_lose_an_update(store):
    ids: list[str] = []

    def writer(n: int) -> None:
        s = Store(store.path)  # its own handle, like another request
        for i in range(15):
            ids.append(add_memory(s, f"thread {n} note {i}", "episodic").id)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {m.id for m in list_memories(Store(store.path))} == set(ids)
    assert all(len(c.parents) <= 1 for c in store.log())
    assert len(store.log()) == 61


def test_stale_lock_debris_is_cleared(store):
    (store.path / "refs" / "heads" / "main.lock").write_text("left by a killed writer")
    (store.path / "objects" / "tmp_atocore_obj_1_deadbeef").write_bytes(b"partial")
    add_memory(Store(store.path), "still works", "knowledge")  # a new process sweeps on its first write
    assert not (store.path / "refs" / "heads" / "main.lock").exists()
    assert not list((store.path / "objects").glob("tmp_atocore_obj_*"))
    fsck(store.path)


def test_raw_tree_matches_git_order(store):
    names = {"a.md": b"1", "a/b.md": b"2", "a-b.md": b"3", "a0": b"4", "b": b"5", "A": b"6"}
    store.commit(names, "tricky names")
    fsck(store.path)  # git checks entry order strictly
    root = store.tree_id()
    tree = RawTree.parse(store._raw(root)[1])
    assert tree.get(b"a")[0] is True and store.read("a/b.md") == b"2"
    assert tree.get(b"a.md")[0] is False and tree.get(b"missing") is None


# ---------------------------------------------------------------- front matter: fast path == YAML

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


@settings(max_examples=300, deadline=None)
@example(meta={"no": None})
@example(meta={"on": "yes", "null": "~"})
@given(meta=st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
                            st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                                      st.floats(-1e6, 1e6, allow_nan=False), _text, st.lists(_text, max_size=3)),
                            max_size=8))
def test_front_matter_fast_path_reads_like_yaml(meta):
    text = dump_front_matter(meta)
    parsed, _ = split_front_matter("---\n" + text + "---\nbody", "m")
    assert parsed == (yaml.safe_load(text) or {}) if meta else True
    if meta:
        assert parsed == meta


@pytest.mark.parametrize("line, value", [
    ("type: knowledge", "knowledge"), ("n: yes", True), ("n: off", False), ("n: 1e3", "1e3"),
    ("n: 0x1F", 31), ("n: 2026-01-02", None), ("n: '2026-01-02'", "2026-01-02"), ("n: \"a\\tb\"", "a\tb"),
    ("n: [a, b]", ["a", "b"]), ("n: ~", None), ("n: 12:30", 750), ("n: 'it''s'", "it's"),
])
def test_front_matter_falls_back_to_yaml_for_anything_unusual(line, value):
    parsed, _ = split_front_matter(f"---\n{line}\n---\n", "m")
    expected = yaml.safe_load(line)["n" if line.startswith("n") else "type"]
    key = line.split(":")[0]
    assert parsed[key] == expected
    if value is not None:
        assert parsed[key] == value


def test_memory_round_trip_with_unicode_and_quotes(store):
    m = add_memory(store, "Ünïcode “quotes” — and 'single' ones\n\n# heading", "identity", project="optics",
                   tags=["émoji 🙂", "yes", "0x1F", "2026-01-02"], source="talk: with colon")
    back = get_memory(store, m.id)
    assert back == m
    assert parse_memory(m.dump(), m.path) == m
    assert isinstance(Memory(**m.to_dict()).dump(), bytes)


# ---------------------------------------------------------------- RawTree == dulwich's Tree

_names = st.from_regex(r"[a-zA-Z0-9._-]{1,12}", fullmatch=True).filter(lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(initial=st.dictionaries(_names, st.booleans(), max_size=30),
       edits=st.lists(st.tuples(_names, st.sampled_from(["file", "dir", "del"])), max_size=30))
def test_raw_tree_edits_serialise_exactly_like_dulwich(initial, edits):
    from dulwich.objects import Tree

    from atocore.store.objects import object_id

    def sha(name: bytes, n: int) -> str:
        return object_id(b"blob", name + bytes([n % 256]))

    ref = Tree()
    for i, (name, is_dir) in enumerate(initial.items()):
        ref.add(name.encode(), 0o40000 if is_dir else 0o100644, sha(name.encode(), i).encode())
    raw = RawTree.parse(ref.as_raw_string())
    assert raw.serialize() == ref.as_raw_string()
    tree = raw.copy()
    for i, (name, op) in enumerate(edits):
        n = name.encode()
        if op == "del":
            tree.remove(n)
            tree.remove(n + b"/")
            for key in [k for k in ref if k == n]:
                del ref[key]
        else:
            is_dir = op == "dir"
            tree.remove(n + b"/" if not is_dir else n)  # a name is a file or a folder, not both
            tree.put(n, is_dir, sha(n, i))
            ref.add(n, 0o40000 if is_dir else 0o100644, sha(n, i).encode())
    assert tree.serialize() == ref.as_raw_string()
    assert object_id(b"tree", tree.serialize()) == ref.id.decode()
    assert raw.serialize() == RawTree.parse(raw.serialize()).serialize()  # the original is untouched
