"""Relevance beyond the ranking itself: trusted state ranked among its own entries, the context
build putting the answering fact first, knowing when to stay empty, and /health naming the model.

Real store, real tantivy / usearch indexes, the real model2vec model, real uvicorn for /health.
"""

from __future__ import annotations

import pytest

from atocore import records
from atocore.context.build import build_context
from atocore.retrieval import Retriever, open_retriever
from tests.fixtures_server import served, two_projects  # noqa: F401

ENTRIES = [  # category order would put these in this order; the prompts ask for the last ones
    ("summary", "overview", "A 300 mm Newtonian telescope built in the club workshop"),
    ("status", "current-step", "Figuring the primary; parabolizing is half done"),
    ("decision", "coating", "Protected aluminium from the regional coater, recoat every 5 years"),
    ("fact", "focal-length", "The focal length is 1500 mm, f/5"),
    ("fact", "cell-design", "An 18-point whiffletree cell carries the primary mirror"),
    ("fact", "eyepiece-set", "Eyepieces: 24 mm panoptic and 9 mm nagler"),
]


@pytest.fixture
def scope(store):
    state = records.ProjectState("scope", [records.StateEntry(c, k, v) for c, k, v in ENTRIES])
    store.commit({state.path: state.dump(),
                  "sources/scope/notes.md": b"# Notes\n\n## Grinding\n\nCarborundum grits 80 to 500, then pitch.\n"},
                 "seed")
    r = open_retriever(store)
    r.update()
    return store, r


def test_state_entries_are_not_damped_as_one_file(scope):
    store, r = scope
    hits = r.search("eyepieces nagler panoptic whiffletree cell", kinds=["state"], k=6)
    assert [h.source for h in hits[:2]] == ["state/scope.yaml#eyepiece-set", "state/scope.yaml#cell-design"] or \
        [h.source for h in hits[:2]] == ["state/scope.yaml#cell-design", "state/scope.yaml#eyepiece-set"]
    gen = r._gen
    keys = [k for k, (p, _, kd) in gen.keymap.items() if kd == "state"]
    assert len(set(gen.files_of(keys))) == len(ENTRIES)  # each entry is its own group for damping


@pytest.mark.parametrize("prompt,first", [
    ("which eyepieces do we have", "eyepiece-set"),
    ("what is the focal length of the scope", "focal-length"),
    ("how is the mirror held in its cell", "cell-design"),
])
def test_context_build_puts_the_answering_state_first(scope, prompt, first):
    store, r = scope
    b = build_context(store, r, prompt, project="scope")
    state = [i for i in b.items if i.section == "state"]
    assert state and state[0].meta["key"] == first, [i.meta["key"] for i in state]
    assert len(state) == len(ENTRIES)  # the rest of the state is still there, after it


def test_status_names_the_serving_model(scope, model_path):
    store, r = scope
    emb = r.status()["embedding"]
    assert emb["name"] == model_path and emb["dims"] == 256 and emb["fingerprint"]
    assert emb["serving"] == f"{model_path}@{emb['fingerprint']}"


def test_degraded_status_says_none_and_why(store, monkeypatch, tmp_path):
    store.commit({"sources/x/a.md": b"# A\n\ntext\n"}, "seed")
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", str(tmp_path / "no-such-model"))
    emb = Retriever(store).status()["embedding"]
    assert emb["serving"].startswith("none: degraded, ") and "could not be loaded" in emb["serving"]
    assert emb["dims"] is None


def test_health_says_which_model_serves(served, model_path):
    with served.client() as c:
        h = c.get("/health").json()
    assert h["model"]["name"] == model_path and h["model"]["dims"] == 256
    assert h["model"]["serving"].startswith(model_path + "@")


# --------------------------------------------------------------------------- knowing when to stay empty

OFF_TOPIC = ["How many hours should I bake a sourdough bread?",  # shares "hours" with a polishing note
             "What is the capital of Mongolia?",
             "Which laser printer toner fits an office copier?"]  # shares "laser" with an alignment note


@pytest.mark.parametrize("prompt", OFF_TOPIC)
def test_off_topic_prompt_gets_an_empty_supplement_and_says_why(two_projects, prompt):
    b = build_context(two_projects, open_retriever(two_projects), prompt)
    assert b.items == [] and b.project is None
    assert any(n.startswith("no match in the store") for n in b.notes) or "capital" in prompt


@pytest.mark.parametrize("prompt,project", [
    ("how long do polishing runs take", "p04"),
    ("which microcontroller runs the gripper firmware", "rover"),
    ("what does the interferometer measure", "p04"),
])
def test_answerable_prompt_is_not_left_empty(two_projects, prompt, project):
    b = build_context(two_projects, open_retriever(two_projects), prompt)
    assert b.project == project and any(i.section != "state" for i in b.items)
    assert not any(n.startswith("no match") for n in b.notes)


def test_debug_context_says_why_the_supplement_is_empty(served):
    with served.client() as c:
        built = c.post("/context/build", json={"prompt": OFF_TOPIC[0]}).json()
        last = c.get("/debug/context").json()
    assert built["items"] == []
    assert any("no match in the store" in n for n in last["notes"])


# a prompt naming something no indexed text has (a capitalised or identifier-shaped word) is judged
# on a higher line: its other words alone do not make it answerable
NAMED_OFF_TOPIC = "WordPress plugin for the laser tracker"  # shares "laser tracker" with an alignment note


def test_prompt_naming_an_unknown_thing_gets_an_empty_supplement(two_projects):
    b = build_context(two_projects, open_retriever(two_projects), NAMED_OFF_TOPIC)
    assert b.items == [] and b.project is None
    note = next(n for n in b.notes if n.startswith("no match in the store"))
    assert "'WordPress'" in note and "no indexed text has" in note


def test_answerable_prompt_with_an_unknown_name_is_kept(two_projects):
    # the gripper's servos are in the notes; "Dynamixel" is not, but the rest of the prompt is well covered
    b = build_context(two_projects, open_retriever(two_projects), "Which servo motors does the Dynamixel gripper use?")
    assert b.project == "rover" and any(i.section != "state" for i in b.items)
    assert not any(n.startswith("no match") for n in b.notes)


@pytest.mark.parametrize("word,first,name", [
    ("Kubernetes", False, True), ("Kubernetes", True, False), ("VLOOKUP", True, True), ("useEffect", True, True),
    ("E0597", False, True), ("stm32cubemx", False, True), ("I", False, False), ("168", False, False),
    ("gripper", False, False),
])
def test_what_looks_like_a_name(word, first, name):
    from atocore.retrieval.retriever import _looks_like_name

    assert _looks_like_name(word, first) is name


def test_debug_context_names_the_unknown_words(served):
    with served.client() as c:
        built = c.post("/context/build", json={"prompt": NAMED_OFF_TOPIC}).json()
        last = c.get("/debug/context").json()
    assert built["items"] == []
    assert any("'WordPress'" in n for n in last["notes"] if n.startswith("no match in the store"))


def test_a_compound_identifier_with_an_unknown_word_is_a_name(two_projects):
    # lower-case but identifier-shaped: "wp-cli" names a tool no indexed text has; "laser-tracker" is
    # made of words the notes have (a paraphrase's hyphenation, not a foreign name)
    r = open_retriever(two_projects)
    prompt = "wp-cli plugin for the laser-tracker"
    ev = r.match_evidence(prompt, r.search(prompt))
    assert ev["unknown_names"] == ["wp-cli"]
    b = build_context(two_projects, r, prompt)
    assert b.items == [] and b.project is None
    assert any("'wp-cli'" in n for n in b.notes if n.startswith("no match in the store"))
