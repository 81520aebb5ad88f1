"""``status`` caches per-file validation by blob sha in the index folder: the cached answer is
the uncached one, a changed or renamed file is checked again, and a damaged cache is ignored."""

from __future__ import annotations

from atocore.cli.store_cmds import store_summary
from atocore.memories import add_memory, invalidate_memory
from atocore.state import propose_state

CACHE = "status-cache.json"


def _summary(store) -> dict:
    out = store_summary(store)
    return {k: out[k] for k in ("counts", "invalid", "head")}


def test_cached_status_equals_uncached_as_the_store_changes(store):
    m = add_memory(store, "Alice prefers metric units", "preference")
    propose_state(store, "optics", "lens", "50 mm", approve=True)
    store.commit({"memories/broken.md": b"oops"}, "a bad push")
    first = _summary(store)
    assert (store.index_dir / CACHE).exists()
    assert _summary(store) == first  # answered from the cache
    invalidate_memory(store, m.id, "wrong")
    raw = store.read(f"memories/{m.id}.md")
    store.commit({"memories/other-name.md": raw}, "same content under a name that does not match its id")
    cached = _summary(store)
    assert cached["counts"]["memories_by_status"] == {"invalid": 1}
    assert any(line.startswith("memories/other-name.md") for line in cached["invalid"])
    (store.index_dir / CACHE).unlink()
    assert _summary(store) == cached
    (store.index_dir / CACHE).write_text("{not json")
    assert _summary(store) == cached
