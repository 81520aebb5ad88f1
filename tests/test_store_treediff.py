"""The store's tree diff (prefix/suffix trimming, atocore/store/treediff.py) against dulwich's
full diff, on real commits in a real store: random edits to flat and nested folders."""

from __future__ import annotations

from dulwich.diff_tree import tree_changes as dulwich_changes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atocore.store import init_store
from atocore.store.treediff import common_prefix, common_suffix


def reference(store, t1, t2):
    out = []
    for ch in dulwich_changes(store.repo.object_store, t1, t2):
        o, n = ch.old, ch.new
        path = (n.path if n is not None and n.path else o.path).decode()
        out.append((path, o.sha.decode() if o is not None and o.sha else None,
                    n.sha.decode() if n is not None and n.sha else None, n.mode if n is not None else None))
    return sorted(out)


def ours(store, t1, t2):
    return sorted(store.tree_changes(t1, t2))


names = st.sampled_from([f"memories/m{i:03d}.md" for i in range(60)] + [f"sources/p/d{i}/f{j}.md" for i in range(4)
                                                                       for j in range(4)] + ["a.md", "z.md"])
edit = st.tuples(names, st.one_of(st.none(), st.binary(min_size=1, max_size=8)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(edit, min_size=1, max_size=40), second=st.lists(edit, min_size=1, max_size=6))
def test_tree_changes_match_dulwich(tmp_path_factory, first, second):
    store, _ = init_store(tmp_path_factory.mktemp("td") / "store")
    base = store.commit({p: c or b"x" for p, c in first}, "base")
    changes = dict(second)
    head = store.commit(changes, "edit", allow_empty=True) or base
    t1, t2 = store._commit(base).tree, store._commit(head).tree
    assert ours(store, t1, t2) == reference(store, t1, t2)
    assert ours(store, t2, t1) == reference(store, t2, t1)
    assert ours(store, None, t2) == reference(store, None, t2)
    assert ours(store, t1, t1) == []


def test_a_path_that_turns_from_file_to_folder(store):
    a = store.commit({"notes": b"file", "keep.md": b"k"}, "file")
    store.commit({"notes": None}, "gone")
    b = store.commit({"notes/inner.md": b"now a folder"}, "folder")
    t1, t2 = store._commit(a).tree, store._commit(b).tree
    assert ours(store, t1, t2) == reference(store, t1, t2)
    assert [c[0] for c in ours(store, t1, t2)] == ["notes", "notes/inner.md"]


@given(st.binary(max_size=9000), st.binary(max_size=300), st.binary(max_size=300))
def test_common_prefix_and_suffix(core, x, y):
    a, b = x + core, y + core
    n = min(len(a), len(b))
    expect = next((i for i in range(n) if a[i] != b[i]), n)
    assert common_prefix(a, b) == expect
    a, b = core + x, core + y
    expect = next((i for i in range(n) if a[len(a) - 1 - i] != b[len(b) - 1 - i]), n)
    assert common_suffix(a, b, n) == expect
