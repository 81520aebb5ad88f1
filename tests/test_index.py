"""The derived index: incremental updates, rebuilds, corruption, model changes, concurrency."""

from __future__ import annotations

import json
import random
import shutil
import threading
from pathlib import Path

import pytest

from atocore.memories import add_memory, supersede_memory
from atocore.retrieval import DEFAULT_FUSION, Retriever, open_retriever
from tests.conftest import run_cli

WORDS = ("mirror lens laser fringe polish pitch lap cerium grit turntable crank belt vacuum pump gauge "
         "coating aluminium cell whiffletree collimation focus camera flat dark zone edge spindle stroke "
         "motor driver firmware recipe slurry bearing grease table isolator piezo phase zernike").split()
QUERIES = ["mirror coating", "laser fringe phase", "polish pitch lap zone", "vacuum pump gauge",
           "motor driver firmware", "how do we keep the glass from bending", "camera dark flat"]


def doc(rng: random.Random, title: str) -> bytes:
    parts = [f"# {title}\n"]
    for s in range(rng.randint(1, 4)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))
        parts.append(f"## Section {s} {rng.choice(WORDS)}\n\n{words.capitalize()}.\n")
    return "\n".join(parts).encode()


def results(r: Retriever, project: str | None = None) -> list[list[tuple[str, float]]]:
    # raw fused scores: the same-file damping depends on order, which would amplify near-ties
    raw = DEFAULT_FUSION.with_(same_file_decay=1.0)
    return [[(h.id, round(h.score, 3)) for h in r.search(q, k=8, project=project, fusion=raw)] for q in QUERIES]


def test_incremental_update_equals_full_rebuild(store):
    rng = random.Random(42)
    r = open_retriever(store)
    # a base corpus, so BM25 statistics are not dominated by the few documents that churn
    base = {f"sources/{('m1', 'fringe')[i % 2]}/base/b{i}.md": doc(rng, f"Base {i}") for i in range(60)}
    store.commit(base, "base")
    paths: list[str] = list(base)
    memories = []
    actions: list[str] = []
    for step in range(40):
        op = rng.random()
        changes: dict[str, bytes | None] = {}
        if op < 0.4 or not paths:
            p = f"sources/{rng.choice(['m1', 'fringe'])}/docs/d{step}.{rng.choice(['md', 'txt', 'rst'])}"
            changes[p] = doc(rng, f"Doc {step}")
            paths.append(p)
        elif op < 0.65:
            changes[rng.choice(paths)] = doc(rng, f"Edited {step}")
        elif op < 0.8:
            p = rng.choice(paths)
            paths.remove(p)
            changes[p] = None
        elif op < 0.9 or not memories:
            memories.append(add_memory(store, " ".join(rng.choice(WORDS) for _ in range(12)), "knowledge",
                                       project=rng.choice(["m1", "fringe", None])).id)
        else:
            old = memories.pop(rng.randrange(len(memories)))
            memories.append(supersede_memory(store, old, " ".join(rng.choice(WORDS) for _ in range(10))).id)
        if changes:
            store.commit(changes, f"step {step}")
        if step % 3 == 0:
            actions.append(r.update()["action"])
    actions.append(r.update()["action"])
    assert r.status()["stale"] is False
    done = [a for a in actions if a != "none"]
    assert done[-1] == "incremental" and done.count("incremental") >= 8, actions
    incremental = {p: results(r, p) for p in (None, "m1", "fringe")}
    counts = r.status()["counts"]

    fresh = Retriever(store)
    info = fresh.rebuild()
    assert info["action"] == "rebuild"
    assert fresh.status()["counts"] == counts
    for p, res in incremental.items():
        for q, a, b in zip(QUERIES, results(fresh, p), res):
            same_results(a, b, f"{p} {q}")


def same_results(full, inc, what, tol=0.1):
    """The same hits with the same scores, up to BM25 statistics drift: tantivy counts deleted
    documents in its term statistics until their segment is merged (bounded by the compaction
    rebuild), so scores may move a little and near-ties may swap; nothing else may differ."""
    fs, ins = dict(full), dict(inc)
    if not full or not inc:
        assert full == inc, what
        return
    floor = max(full[-1][1], inc[-1][1]) + tol  # below this the k-cutoff may legitimately differ
    for mine, other in ((full, ins), (inc, fs)):
        for i, sc in mine:
            if sc > floor:
                assert i in other, (what, i, full, inc)
    common = [i for i, _ in full if i in ins]
    for i in common:
        assert abs(fs[i] - ins[i]) <= tol, (what, i, fs[i], ins[i])
    order_inc = sorted(common, key=lambda i: -ins[i])
    for a in range(len(common)):
        for b in range(a + 1, len(common)):
            x, y = common[a], common[b]  # x above y in the full rebuild
            if order_inc.index(x) > order_inc.index(y):
                assert fs[x] - fs[y] <= tol, (what, x, y, full, inc)


def test_incremental_update_touches_only_changed_files(store):
    store.commit({f"sources/m1/d{i}.md": f"# D{i}\n\nmirror note {i}\n".encode() for i in range(30)}, "docs")
    r = open_retriever(store)
    r.update()
    store.commit({"sources/m1/d3.md": b"# D3\n\nnew text about a laser\n"}, "edit")
    info = r.update()
    assert info["action"] == "incremental" and info["files"] == 1 and info["added"] == 1 and info["removed"] == 1
    assert r.search("laser")[0].source == "d3.md"


def test_deleted_source_disappears(store):
    store.commit({"sources/m1/a.md": b"# A\n\nThe unique word zanzibar.\n", "sources/m1/b.md": b"# B\n\nother\n"}, "docs")
    r = open_retriever(store)
    assert [h.source for h in r.search("zanzibar")][:1] == ["a.md"]
    store.commit({"sources/m1/a.md": None}, "rm")
    assert all(h.source != "a.md" for h in r.search("zanzibar"))


def gen_dir(store) -> Path:
    return Path(store.index_dir) / (Path(store.index_dir) / "CURRENT").read_text().strip()


@pytest.mark.parametrize("damage", ["vectors", "tantivy-meta", "sqlite", "meta", "dirty", "missing-segment"])
def test_corrupt_index_is_detected_and_rebuilt(store, damage):
    store.commit({f"sources/m1/d{i}.md": f"# D{i}\n\nmirror coating note {i}\n".encode() for i in range(10)}, "docs")
    r = Retriever(store)
    r.update()
    g = gen_dir(store)
    if damage == "vectors":
        (g / "vectors.usearch").write_bytes(b"garbage" * 10)
    elif damage == "tantivy-meta":
        (g / "bm25" / "meta.json").write_text("{not json")
    elif damage == "sqlite":
        (g / "chunks.sqlite").write_bytes(b"this is not a database" * 100)
        for extra in ("chunks.sqlite-wal", "chunks.sqlite-shm"):
            (g / extra).unlink(missing_ok=True)
    elif damage == "meta":
        (g / "meta.json").write_text("[]")
    elif damage == "dirty":
        meta = json.loads((g / "meta.json").read_text())
        (g / "meta.json").write_text(json.dumps({**meta, "dirty": True}))
    elif damage == "missing-segment":
        victim = next(p for p in (g / "bm25").iterdir() if p.suffix in (".term", ".idx", ".store"))
        victim.unlink()
    fresh = Retriever(store)  # a new process opening the damaged index
    hits = fresh.search("mirror coating", k=3)
    assert hits and hits[0].kind == "chunk"
    assert fresh.status()["last_update"]["action"] == "rebuild"
    assert gen_dir(store) != g and not g.exists()


def test_model_change_triggers_rebuild(store, monkeypatch, model_path, tmp_path):
    store.commit({"sources/m1/a.md": b"# A\n\nmirror coating in a vacuum chamber\n"}, "docs")
    r = open_retriever(store)
    r.update()
    first = r.status()
    copy = tmp_path / "model-copy"
    shutil.copytree(model_path, copy)
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", str(copy))
    info = r.update()
    assert info["action"] == "rebuild" and "model" in info["reason"]
    st = r.status()
    assert st["index_model"] != first["index_model"] and st["index_model"].startswith(str(copy))
    assert st["degraded"] is False
    assert r.search("vacuum")[0].source == "a.md"
    # the store config names the model too (without the environment override)
    monkeypatch.delenv("ATOCORE_EMBED_MODEL")
    cfg = store.read("atocore.yaml").decode().replace("minishlab/potion-base-8M", model_path)
    store.commit({"atocore.yaml": cfg.encode()}, "use the local model")
    info = r.update()
    assert info["action"] == "rebuild" and r.status()["index_model"].startswith(model_path)


def test_schema_change_triggers_rebuild(store):
    store.commit({"sources/m1/a.md": b"# A\n\ntext\n"}, "docs")
    r = Retriever(store)
    r.update()
    g = gen_dir(store)
    meta = json.loads((g / "meta.json").read_text())
    (g / "meta.json").write_text(json.dumps({**meta, "schema": 0}))
    info = Retriever(store).update()
    assert info["action"] == "rebuild" and "schema" in info["reason"]


def test_search_keeps_answering_during_rebuild(store):
    rng = random.Random(3)
    store.commit({f"sources/m1/d{i}.md": doc(rng, f"Doc {i}") for i in range(400)}, "many docs")
    store.commit({"sources/m1/target.md": b"# Target\n\nThe word quokka appears here.\n"}, "target")
    r = open_retriever(store)
    r.update()
    answered_while_building = 0
    errors: list[BaseException] = []
    done = threading.Event()

    def rebuild():
        try:
            r.rebuild()
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=rebuild)
    t.start()
    while not done.is_set():
        building = r.status()["building"]
        hits = r.search("quokka", k=3)
        assert hits and hits[0].source == "target.md"
        answered_while_building += building
    t.join()
    assert not errors
    assert answered_while_building > 0
    assert r.search("quokka")[0].source == "target.md"


def test_concurrent_searches_and_updates(store):
    store.commit({"sources/m1/a.md": b"# A\n\nmirror\n"}, "a")
    r = open_retriever(store)
    r.update()
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                r.search("mirror laser", k=5)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(15):
        store.commit({f"sources/m1/n{i}.md": f"# N{i}\n\nlaser note {i}\n".encode()}, f"note {i}")
        r.update()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert r.status()["counts"]["chunk"] == 16


def test_another_process_updating_is_picked_up(store):
    store.commit({"sources/m1/a.md": b"# A\n\nmirror\n"}, "a")
    r = open_retriever(store)
    r.update()
    store.commit({"sources/m1/b.md": b"# B\n\nthe wombat note\n"}, "b")
    run_cli("index", "update", store=store)  # another process brings the index to main first
    assert r.search("wombat")[0].source == "b.md"
    assert r.status()["stale"] is False


def test_empty_store_and_status(store):
    r = open_retriever(store)
    assert r.search("anything") == []
    st = r.status()
    assert st["stale"] is False and st["counts"]["total"] == 0 and st["size_bytes"] > 0
    assert st["model"] and st["degraded"] is False


def test_a_process_without_the_model_does_not_throw_the_vectors_away(store, tmp_path):
    store.commit({"sources/m1/a.md": b"# A\n\nmirror coating in a vacuum chamber\n"}, "a")
    capable = open_retriever(store)
    capable.update()
    model_id = capable.status()["index_model"]
    degraded = Retriever(store, model=str(tmp_path / "missing-model"))  # e.g. a shell without the model
    store.commit({"sources/m1/b.md": b"# Cell\n\nAn 18-point whiffletree supports the back of the glass.\n"}, "b")
    info = degraded.update()
    assert info["action"] == "incremental"
    st = degraded.status()
    assert st["degraded"] is True and st["index_model"] == model_id and st["unembedded"] == 1
    assert degraded.search("whiffletree")[0].source == "b.md"  # BM25 serves it
    # the process with the model embeds what was left over, without a rebuild
    info = capable.update()
    assert info["action"] == "incremental" and capable.status()["unembedded"] == 0
    assert capable.search("what holds the glass up so it does not sag", k=1)[0].source == "b.md"
    assert Retriever(store).update()["action"] == "none"  # and the index on disk is consistent


def test_graph_built_in_a_child_process_matches_the_threaded_build(store, monkeypatch):
    rng = random.Random(9)
    store.commit({f"sources/m1/d{i}.md": doc(rng, f"Doc {i}") for i in range(40)}, "docs")
    from atocore.retrieval import indexing as rmod

    threaded = Retriever(store)
    threaded.rebuild()
    expected = results(threaded)
    monkeypatch.setattr(rmod, "GRAPH_PROCESS_MIN_FILES", 1)
    child = Retriever(store)
    info = child.rebuild()
    assert "hnsw_wait" in info["stage_seconds"]  # the child-process path ran
    assert results(child) == expected
    assert Retriever(store).update()["action"] == "none"  # what it saved opens cleanly


def test_a_rebuild_by_another_process_is_adopted(store):
    store.commit({"sources/m1/a.md": b"# A\n\nmirror\n"}, "a")
    r = open_retriever(store)
    r.update()
    before = r.status()["path"]
    run_cli("index", "rebuild", store=store)  # another process swaps in a new generation
    assert r.search("mirror")[0].source == "a.md"
    assert r.status()["path"] != before and Path(r.status()["path"]).is_dir()


@pytest.mark.parametrize("in_child", [False, True])
def test_per_project_graphs_answer_filtered_searches(store, monkeypatch, in_child):
    """Above EXACT_MAX vectors, a project filter searches that project's own HNSW graph; it must
    stay in step with the store through rebuilds and incremental updates."""
    from atocore.retrieval import index as imod
    from atocore.retrieval import indexing as rmod

    rng = random.Random(11)
    files = {f"sources/{p}/d{i}.md": doc(rng, f"{p} doc {i}") for p in ("m1", "m2") for i in range(30)}
    store.commit(files, "docs")
    exact = results(Retriever(store), project="m1")  # small sets are searched exactly
    monkeypatch.setattr(imod, "EXACT_MAX", 4)
    if in_child:
        monkeypatch.setattr(rmod, "GRAPH_PROCESS_MIN_FILES", 1)
    r = Retriever(store)
    r.rebuild()
    assert r._gen.parts.get("m1") is not None  # the per-project graph path is what runs
    graphed = results(r, project="m1")
    for q_exact, q_graph in zip(exact, graphed):
        assert all(hid.startswith("sources/m1/") for hid, _ in q_graph)
        overlap = len({h for h, _ in q_exact} & {h for h, _ in q_graph})
        assert overlap >= len(q_exact) - 1  # HNSW on 30 docs is (near) exact

    # incremental: a new document is found through the graph, a deleted one is gone
    store.commit({"sources/m1/new.md": b"# Zerodur blank\n\nThe zerodur blank arrived with a chipped bevel.\n",
                  "sources/m1/d0.md": None}, "edit m1")
    assert r.update()["action"] != "none"
    hits = r.search("zerodur blank chipped bevel", project="m1", k=5)
    assert hits and hits[0].path == "sources/m1/new.md"
    assert not any(h.path == "sources/m1/d0.md" for q in QUERIES for h in r.search(q, project="m1", k=10))
    assert all(h.project == "m2" for h in r.search("zerodur blank", project="m2", k=10))
