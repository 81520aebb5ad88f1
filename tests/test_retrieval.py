"""Retrieval: chunking, search, filters, degraded mode and the binding search payload.

Real store, real tantivy / usearch indexes and the real model2vec model (conftest).
"""

from __future__ import annotations

import json
import time

import pytest

from atocore import records
from atocore.errors import ValidationError
from atocore.memories import add_memory, invalidate_memory, supersede_memory
from atocore.api import search_payload
from atocore.retrieval import Retriever, open_retriever, split_document
from atocore.retrieval.chunking import chunks_for_file
from atocore.retrieval.embedder import forget
from tests.conftest import run_cli

MIRROR = b"""# Primary mirror

Notes on the 300 mm primary.

## Coating

The mirror was aluminized in a vacuum chamber at 2e-5 mbar, with a silicon monoxide overcoat.

## Cell

An 18-point whiffletree cell supports the back of the glass so gravity does not bend it.
"""

FRINGE = b"""# Interferometer

## Light source

A helium-neon laser at 632.8 nm, spatially filtered through a pinhole.

## Vibration

Pneumatic isolators under the optical table stop the fringes shaking when people walk by.
"""


def seed(store) -> None:
    state = records.ProjectState("m1", [records.StateEntry("decision", "coating", "Protected aluminium, recoat every 5 years")])
    store.commit({
        "sources/m1/docs/mirror.md": MIRROR,
        "sources/fringe/docs/setup.md": FRINGE,
        "sources/fringe/notes/log.txt": b"Day one.\n\nThe laser warmed up for an hour before the fringes settled.\n",
        state.path: state.dump(),
    }, "seed")


# --------------------------------------------------------------------------- chunking


def test_markdown_chunks_keep_heading_path_and_lines():
    chunks = split_document(MIRROR.decode(), ".md")
    titles = [c[0] for c in chunks]
    assert titles == ["Primary mirror", "Primary mirror > Coating", "Primary mirror > Cell"]
    title, first, last, text = chunks[1]
    lines = MIRROR.decode().splitlines()
    assert lines[first - 1] == "## Coating" and "aluminized" in lines[last - 1]
    assert "aluminized" in text


def test_markdown_ignores_headings_in_code_fences_and_skips_empty_sections():
    md = "# A\n\n## Empty\n\n### Child\n\ntext\n\n```\n# not a heading\n```\n"
    chunks = split_document(md, ".md")
    assert [c[0] for c in chunks] == ["A > Empty > Child"]
    assert "# not a heading" in chunks[0][3]


def test_rst_sections_and_plain_text_paragraphs():
    rst = "Top\n===\n\nintro\n\nSub\n---\n\nsub text\n"
    assert [c[0] for c in split_document(rst, ".rst")] == ["Top", "Top > Sub"]
    txt = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(10))
    chunks = split_document(txt, ".txt", max_chars=700, overlap=120)
    assert len(chunks) > 3
    assert all(len(c[3]) <= 700 for c in chunks)
    # consecutive pieces overlap a little, and line ranges move forward
    assert chunks[1][1] <= chunks[0][2] + 2
    assert [c[1] for c in chunks] == sorted(c[1] for c in chunks)


def test_size_cap_splits_a_huge_paragraph():
    chunks = split_document("x " * 5000, ".txt", max_chars=1200, overlap=150)
    assert len(chunks) >= 8 and all(len(c[3]) <= 1200 for c in chunks)


def test_records_become_their_own_kinds():
    mem = records.memory_from_dict({"id": "01JABCDEFGHJKMNPQRSTVWXYZ0", "type": "knowledge", "project": "m1",
                                    "text": "Recheck collimation after transport"})
    [c] = chunks_for_file(mem.path, mem.dump())
    assert (c.kind, c.origin, c.source, c.id, c.project) == ("memory", "memory", mem.path, mem.id, "m1")
    cand = records.memory_from_dict({**mem.to_dict(), "status": "candidate"})
    assert chunks_for_file(cand.path, cand.dump()) == []
    inter = records.interaction_from_dict({"id": "t1", "source": "claude-code", "session_id": "s1",
                                           "prompt": "How do I vent?", "response": "Use dry nitrogen.", "project": "lab"})
    path = records.interaction_path(inter)
    [c] = chunks_for_file(path, inter.dump_line())
    assert (c.kind, c.origin, c.source, c.lines) == ("chunk", "interaction", f"{path}#t1", (1, 1))


# --------------------------------------------------------------------------- search


def test_search_returns_hits_with_provenance(store):
    seed(store)
    r = open_retriever(store)
    hits = r.search("aluminized vacuum coating", k=5)
    top = hits[0]
    assert (top.kind, top.project, top.source, top.origin) == ("chunk", "m1", "docs/mirror.md", "source")
    assert top.title == "Primary mirror > Coating"
    assert top.commit == store.head() and top.path == "sources/m1/docs/mirror.md"
    lines = MIRROR.decode().splitlines()
    assert "aluminized" in "\n".join(lines[top.lines[0] - 1: top.lines[1]])
    d = top.to_dict()
    assert {"id", "kind", "project", "source", "title", "text", "score", "commit", "lines", "path", "origin"} <= set(d)


def test_paraphrase_finds_the_section(store):
    seed(store)
    hits = open_retriever(store).search("what holds the glass up so it does not sag", k=3)
    assert hits and hits[0].title == "Primary mirror > Cell"


def test_state_entries_and_memories_are_searchable(store):
    seed(store)
    mem = add_memory(store, "The dark site is two hours away; collimate after the drive", "episodic", project="m1")
    r = open_retriever(store)
    hits = r.search("recoat aluminium years", k=5)
    state = [h for h in hits if h.kind == "state"]
    assert state and state[0].source == "state/m1.yaml#coating" and state[0].id == "state:m1:coating"
    hits = r.search("collimate after the drive to the dark site", k=3, kinds=["memory"])
    assert [h.id for h in hits] == [mem.id] and hits[0].source == f"memories/{mem.id}.md"


def test_superseded_and_invalidated_memories_disappear(store):
    seed(store)
    r = open_retriever(store)
    old = add_memory(store, "The polisher turntable runs at 3 rpm", "knowledge", project="m1")
    assert [h.id for h in r.search("polisher turntable rpm", kinds=["memory"])] == [old.id]
    new = supersede_memory(store, old.id, "The polisher turntable runs at 5 rpm")
    assert [h.id for h in r.search("polisher turntable rpm", kinds=["memory"])] == [new.id]
    invalidate_memory(store, new.id, "machine was sold")
    assert r.search("polisher turntable rpm", kinds=["memory"]) == []


def test_project_filter_never_leaks(store):
    seed(store)
    # the same words in both projects: only the filter separates them
    store.commit({"sources/m1/docs/laser.md": b"# Laser\n\nThe helium-neon laser for collimation at 632.8 nm.\n",
                  "sources/fringe/docs/mirror.md": b"# Mirror\n\nA mirror aluminized in a vacuum chamber.\n"}, "overlap")
    add_memory(store, "Laser safety goggles live in the fringe drawer", "knowledge", project="fringe")
    add_memory(store, "Global: wear goggles with any laser", "preference")
    r = open_retriever(store)
    queries = ["laser", "mirror aluminized vacuum", "goggles", "fringes shaking", "whiffletree", "zzz unknown words",
               "what holds the glass", "632.8 nm helium neon"]
    for project in ("m1", "fringe"):
        for q in queries:
            for kinds in (None, ["memory"], ["chunk", "state"]):
                hits = r.search(q, project=project, k=20, kinds=kinds)
                assert all(h.project == project for h in hits), (project, q, [h.project for h in hits])
    assert {h.project for h in r.search("laser", k=20)} >= {"m1", "fringe"}
    assert r.search("laser", project="nope") == []


def test_prefer_project_boosts_without_filtering(store):
    seed(store)
    store.commit({"sources/m1/docs/laser.md": b"# Laser\n\nA helium-neon laser used for collimation.\n"}, "laser")
    r = open_retriever(store)
    plain = r.search("helium-neon laser", k=10)
    preferred = r.search("helium-neon laser", k=10, prefer_project="m1")
    assert preferred[0].project == "m1"
    assert {h.id for h in plain} == {h.id for h in preferred}


def test_one_file_does_not_flood_the_top(store):
    body = "\n\n".join(f"## Part {i}\n\nThe telescope mirror cell note number {i} about the mirror." for i in range(12))
    store.commit({"sources/m1/big.md": f"# Big\n\n{body}\n".encode(),
                  "sources/m1/small.md": b"# Small\n\nA short note on the telescope mirror.\n"}, "docs")
    hits = open_retriever(store).search("telescope mirror", k=5)
    assert "small.md" in [h.source for h in hits]


def test_bad_arguments_are_validation_errors(store):
    r = open_retriever(store)
    with pytest.raises(ValidationError, match="k"):
        r.search("x", k=0)
    with pytest.raises(ValidationError, match="kinds"):
        r.search("x", kinds=["note"])
    assert r.search("   ") == []


def test_query_language_characters_are_plain_text(store):
    seed(store)
    r = open_retriever(store)
    for q in ['title:"mirror', "AND OR NOT (", "f/4.5 [x] {y} ^2 ~ *", "'; DROP TABLE chunks; --"]:
        r.search(q)  # never raises


def test_search_payload_shape(store):
    seed(store)
    payload = search_payload(open_retriever(store), "helium neon laser", project="fringe", k=3)
    assert payload["project"] == "fringe"
    assert 1 <= len(payload["hits"]) <= 3
    h = payload["hits"][0]
    assert {"id", "kind", "project", "source", "text", "score"} <= set(h)
    json.dumps(payload)


def test_invalid_files_are_skipped_and_reported(store):
    seed(store)
    store.commit({"memories/01JABCDEFGHJKMNPQRSTVWXYZ1.md": b"---\nid: 01JABCDEFGHJKMNPQRSTVWXYZ1\ntype: bogus\n---\nhi\n",
                  "state/bad.yaml": b"project: [oops\n"}, "bad push")
    r = open_retriever(store)
    r.update()
    bad = {i["path"]: i["error"] for i in r.status()["invalid"]}
    assert set(bad) == {"memories/01JABCDEFGHJKMNPQRSTVWXYZ1.md", "state/bad.yaml"}
    assert "type" in bad["memories/01JABCDEFGHJKMNPQRSTVWXYZ1.md"]
    assert r.search("aluminized")  # the rest is served
    store.commit({"state/bad.yaml": None}, "remove bad state")
    r.update()
    assert [i["path"] for i in r.status()["invalid"]] == ["memories/01JABCDEFGHJKMNPQRSTVWXYZ1.md"]


def test_degraded_without_a_model_serves_bm25(store, monkeypatch, tmp_path):
    seed(store)
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", str(tmp_path / "no-such-model"))
    r = Retriever(store)
    hits = r.search("aluminized vacuum", k=3)
    assert hits and hits[0].title == "Primary mirror > Coating"
    st = r.status()
    assert st["degraded"] is True and "could not be loaded" in st["degraded_reason"]
    assert st["counts"]["chunk"] > 0


def test_hub_name_offline_fails_fast(store, monkeypatch):
    seed(store)
    forget("minishlab/potion-base-8M")
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", "minishlab/potion-base-8M")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    r = Retriever(store)
    assert r.search("aluminized vacuum", k=3)
    assert r.status()["degraded"] is True
    assert time.monotonic() - t < 20


def test_cli_search_json_is_the_payload(store):
    seed(store)
    out = run_cli("search", "helium neon laser", "--project", "fringe", "-k", "2", "--json", store=store)
    payload = json.loads(out.stdout)
    assert payload["project"] == "fringe" and len(payload["hits"]) <= 2
    assert payload["hits"][0]["source"] == "docs/setup.md"
    text = run_cli("search", "whiffletree", store=store).stdout
    assert "docs/mirror.md" in text
    st = json.loads(run_cli("index", "status", "--json", store=store).stdout)
    assert st["stale"] is False and st["degraded"] is False and st["counts"]["chunk"] >= 5
    assert "rebuilt" in run_cli("index", "rebuild", store=store).stdout
    bad = run_cli("search", "x", "-k", "0", store=store, check=False)
    assert bad.returncode != 0 and "-k" in bad.stderr


def test_a_new_process_on_an_up_to_date_index_uses_vectors(store):
    seed(store)
    open_retriever(store).update()
    fresh = Retriever(store)  # as a new process would: index on disk already at main
    hits = fresh.search("what holds the glass up so it does not sag", k=3)
    assert fresh.status()["degraded"] is False
    assert fresh._embedder is not None and hits[0].title == "Primary mirror > Cell"


def test_a_long_pasted_prompt_is_searchable(store):
    seed(store)
    prompt = ("Here is my whole session log. " + "We looked at many unrelated things today. " * 400
              + "Finally: how is the whiffletree cell holding the mirror?")
    hits = open_retriever(store).search(prompt, k=3)
    assert hits  # bounded work, no error


def test_interactions_are_searchable_chunks(store):
    seed(store)
    inter = records.interaction_from_dict({"id": "turn-1", "source": "claude-code", "session_id": "sess-9",
                                           "prompt": "Why does the bell jar take so long to pump down?",
                                           "response": "Vent with dry nitrogen so the walls do not adsorb water.",
                                           "project": "m1"})
    path = records.interaction_path(inter)
    store.commit({path: inter.dump_line()}, "capture")
    [hit] = open_retriever(store).search("dry nitrogen venting bell jar", k=1)
    assert (hit.kind, hit.origin, hit.project, hit.source) == ("chunk", "interaction", "m1", f"{path}#turn-1")
    assert hit.lines == (1, 1) and "nitrogen" in hit.text


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_line = st.one_of(
    st.from_regex(r"#{1,4} [A-Za-z][a-z ]{0,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z][a-z .,]{0,200}", fullmatch=True),
    st.just(""), st.just("```"), st.just("-----"), st.just("x" * 300),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_line, max_size=60), suffix=st.sampled_from([".md", ".rst", ".txt"]))
def test_chunks_respect_the_cap_and_point_at_their_lines(lines, suffix):
    text = "\n".join(lines)
    src = text.splitlines()
    for title, first, last, body in split_document(text, suffix, max_chars=400, overlap=60):
        assert len(body) <= 400
        assert 1 <= first <= last <= max(1, len(src))
        span = "\n".join(src[first - 1:last])
        for piece in body.split("\n\n"):
            piece = piece.lstrip("…")
            assert piece.strip() and (piece in span or piece.strip() in " ".join(span.split())), (piece, span)
