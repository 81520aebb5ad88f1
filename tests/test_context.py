"""Context build: state first, budget, isolation, duplicates, provenance, nothing-relevant, last build."""

from __future__ import annotations

import json

import pytest

from atocore.context import build_context, load_last_build, save_last_build
from atocore.context.build import MIN_BUDGET
from atocore.memories import add_memory
from atocore.retrieval import open_retriever
from tests.conftest import run_cli
from tests.fixtures_server import two_projects  # noqa: F401


@pytest.fixture
def retriever(two_projects):
    return open_retriever(two_projects)


def test_state_first_then_memories_then_chunks(two_projects, retriever):
    b = build_context(two_projects, retriever, "How is the mirror polished with cerium oxide?", project="p04")
    sections = [i.section for i in b.items]
    assert sections[0] == "state" and "chunk" in sections and "memory" in sections
    assert sections == sorted(sections, key=["state", "memory", "chunk"].index)
    state_keys = [i.meta["key"] for i in b.items if i.section == "state"]
    assert set(state_keys) == {"focus", "lap-size"}
    text = b.context
    assert text.index("Trusted project state") < text.index("Memories") < text.index("Relevant sources")


def test_state_is_always_there_even_when_nothing_else_is_relevant(two_projects, retriever):
    b = build_context(two_projects, retriever, "qwxz blorp", project="p04")
    assert [i.section for i in b.items] == ["state", "state"]
    assert "nothing relevant" in " ".join(b.notes)


def test_nothing_relevant_gives_empty_supplement(two_projects, retriever):
    b = build_context(two_projects, retriever, "What's a good recipe for lasagna?")
    assert b.project is None and b.items == [] and b.context == ""


@pytest.mark.parametrize("budget", [MIN_BUDGET, 400, 800, 1500, 4000])
@pytest.mark.parametrize("fmt", ["markdown", "xml", "json"])
def test_budget_is_respected(two_projects, retriever, budget, fmt):
    b = build_context(two_projects, retriever, "mirror polishing lap interferometer alignment", project="p04",
                      budget_chars=budget, format=fmt)
    assert len(b.context) <= budget
    assert b.to_dict()["used_chars"] == len(b.context)


def test_bigger_budget_holds_more(two_projects, retriever):
    small = build_context(two_projects, retriever, "mirror polishing lap interferometer", project="p04",
                          budget_chars=400)
    big = build_context(two_projects, retriever, "mirror polishing lap interferometer", project="p04",
                        budget_chars=8000)
    assert len(big.items) > len(small.items) and big.items[0].section == "state"


def test_project_isolation(two_projects, retriever):
    # "gripper" is only in rover docs, "mirror" only in p04: with p04 given, no rover item may appear.
    b = build_context(two_projects, retriever, "mirror gripper firmware servo", project="p04")
    assert b.items and all(i.project in ("p04", None) for i in b.items)
    assert not any("gripper" in i.text.lower() for i in b.items)
    b2 = build_context(two_projects, retriever, "what does the rv-2 gripper use?")
    assert b2.project == "rover" and b2.project_source == "inferred"
    assert all(i.project in ("rover", None) for i in b2.items)
    assert any("servo" in i.text for i in b2.items)


def test_items_carry_provenance(two_projects, retriever):
    b = build_context(two_projects, retriever, "Fizeau interferometer 633 nm", project="p04")
    chunk = next(i for i in b.items if i.section == "chunk")
    assert chunk.source == "metrology/interferometer.md" and chunk.path == "sources/p04/metrology/interferometer.md"
    assert chunk.lines and chunk.lines[0] >= 1 and chunk.commit == two_projects.head()
    state = b.items[0]
    assert state.source.startswith("state/p04.yaml#") and state.commit == two_projects.head()


def test_near_duplicates_removed(two_projects, retriever):
    text = "The Fizeau interferometer measures the mirror figure at 633 nm. Surface error target is 12 nm RMS."
    add_memory(two_projects, text, "knowledge", project="p04")
    add_memory(two_projects, text + " ", "knowledge", project="p04")
    retriever.update()
    b = build_context(two_projects, retriever, "Fizeau interferometer surface error 633 nm", project="p04",
                      budget_chars=8000)
    bodies = [" ".join(i.text.split()) for i in b.items]
    assert sum(1 for x in bodies if "Fizeau interferometer measures" in x) == 1
    assert b.dropped.get("duplicate", 0) >= 2


def test_last_build_saved_whole_and_cli(two_projects, retriever):
    b = build_context(two_projects, retriever, "pitch lap", project="p04", format="xml")
    save_last_build(two_projects, b.to_dict())
    assert load_last_build(two_projects) == json.loads(json.dumps(b.to_dict()))
    out = json.loads(run_cli("debug-context", store=two_projects).stdout)
    assert out["context"] == b.context and out["format"] == "xml"


def test_context_cli(two_projects):
    out = run_cli("context", "How is the primary mirror polished?", store=two_projects).stdout
    assert "Trusted project state" in out and "polishing.md" in out
    last = json.loads(run_cli("debug-context", store=two_projects).stdout)
    assert last["project"] == "p04" and last["context"].rstrip("\n") == out.rstrip("\n")
    xml = run_cli("context", "gripper servo", "--project", "rover", "--format", "xml", store=two_projects).stdout
    assert xml.startswith("<atocore_context") and 'project="rover"' in xml
    bad = run_cli("context", "x", "--format", "yaml", store=two_projects, check=False)
    assert bad.returncode != 0 and "allowed: json, markdown, xml" in bad.stderr


def test_global_memories_join_a_project_context(two_projects, retriever):
    add_memory(two_projects, "Always quote mirror surface errors in nanometres RMS", "preference")
    retriever.update()
    b = build_context(two_projects, retriever, "what surface error RMS does the mirror reach?", project="p04")
    mems = [i for i in b.items if i.section == "memory"]
    assert any(i.project is None and "nanometres" in i.text for i in mems)
    other = build_context(two_projects, retriever, "gripper firmware servo", project="rover")
    assert not any("nanometres" in i.text for i in other.items)  # still only when relevant
