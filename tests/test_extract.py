"""Candidate memories: explicit signals only, proposed for review, never active unasked, no duplicates."""

from __future__ import annotations

import json

import pytest

from atocore.capture.extract import iter_interactions, propose_candidates
from atocore.default_plugins.signals import rule_candidates
from atocore.capture.record import record_interaction
from atocore.memories import add_memory, list_memories
from atocore.records import Interaction, parse_memory
from atocore.review import approve_review, get_review, list_reviews, reject_review
from tests.conftest import run_cli

REVIEWER = "Ann <ann@example.com>"


def inter(prompt: str, response: str = "ok", project: str | None = None) -> Interaction:
    return Interaction(id="t1", source="claude-code", session_id="s", prompt=prompt, response=response, project=project)


@pytest.mark.parametrize("prompt, expected", [
    ("Remember that the P04 lap is recut every ten runs.", ("knowledge", "remember", "The P04 lap is recut every ten runs.")),
    ("We decided to use restic for backups instead of borg.", ("project", "decision", "We decided to use restic for backups instead of borg.")),
    ("Decision: the rover plans paths with A* over a 5 cm grid", ("project", "decision", "The rover plans paths with A* over a 5 cm grid.")),
    ("I prefer pytest -x -q for quick runs", ("preference", "preference", "I prefer pytest -x -q for quick runs.")),
    ("From now on, write commit messages in the imperative mood.", ("adaptation", "adaptation", "Write commit messages in the imperative mood.")),
    ("Actually, the interferometer runs at 633 nm, not 532 nm.", ("knowledge", "correction", "The interferometer runs at 633 nm, not 532 nm.")),
    ("My name is Ann and I lead the optics work.", ("identity", "identity", "My name is Ann and I lead the optics work.")),
])
def test_explicit_signals_become_typed_candidates(prompt, expected):
    [c] = rule_candidates(inter(prompt))
    assert (c.type, c.signal, c.text) == expected


@pytest.mark.parametrize("prompt", [
    "can you fix the login test?", "Should we remember that?", "No, that's wrong.", "I like it",
    "```\n# remember that this is code, not a request\n```\nrun it",
    "> remember that this is quoted from someone else\nthoughts?",
    "note that the token is [REDACTED:github-token] for now",
    "the build is green and the docs are updated",
])
def test_no_signal_no_candidate(prompt):
    assert rule_candidates(inter(prompt)) == []


def test_a_project_remember_is_a_project_memory():
    [c] = rule_candidates(inter("Please remember that polishing runs take four hours.", project="p04"))
    assert c.type == "project"


def test_the_assistants_words_are_never_extracted():
    assert rule_candidates(inter("thanks", response="Remember that I decided to always use tabs.")) == []


def enable_extract(store):
    cfg = store.read("atocore.yaml").decode().replace("extract: false", "extract: true")
    store.commit({"atocore.yaml": cfg.encode()}, "Enable extraction")


def test_capture_with_extract_on_proposes_candidates_for_review(store):
    enable_extract(store)
    t, _ = record_interaction(store, {"source": "claude-code", "session_id": "sess-1", "id": "cc-abc",
                                      "prompt": "Remember that the P04 lap is recut every ten runs. Also, how are you?",
                                      "response": "Noted."})
    assert list_memories(store) == []  # nothing active, nothing on main
    [p] = list_reviews(store)
    assert p.id == "extract-cc-abc" and p.kind == "memory" and p.approvable
    [(path, raw)] = list(p.files.items())
    mem = parse_memory(raw, path)
    assert (mem.status, mem.type, mem.text) == ("candidate", "knowledge", "The P04 lap is recut every ten runs.")
    assert mem.source == f"interactions/{t.created[:4]}/{t.created[5:7]}/sess-1.jsonl#cc-abc"
    assert "extracted" in mem.tags
    shown = run_cli("review", "show", p.id, store=store).stdout
    assert "Source turn: interactions/" in shown and "> Remember that the P04 lap" in shown and "> Noted." in shown


def test_extract_is_off_by_default(store):
    record_interaction(store, {"source": "claude-code", "session_id": "s", "prompt": "Remember that X is Y for good.",
                               "response": "ok"})
    assert list_reviews(store) == []


def test_no_duplicates_of_memories_or_proposals(store):
    add_memory(store, "The P04 lap is recut every ten runs.", "knowledge")
    for i, prompt in enumerate(["Remember that the P04 lap is recut every ten runs.",
                                "We decided to use restic for the nightly backups.",
                                "we decided to use restic for the nightly backups!"]):
        record_interaction(store, {"source": "claude-code", "session_id": "s", "id": f"cc-{i}", "prompt": prompt,
                                   "response": "ok"})
    out = json.loads(run_cli("extract", "--json", store=store).stdout)
    assert [len(r["memories"]) for r in out] == [1]
    assert out[0]["memories"][0]["text"] == "We decided to use restic for the nightly backups."
    # running again proposes nothing: the open review already holds it
    assert json.loads(run_cli("extract", "--json", store=store).stdout) == []


def test_reviewed_turns_are_not_proposed_again(store):
    for i, prompt in enumerate(["Remember that the gripper firmware runs at 1 kHz.",
                                "I prefer cerium oxide slurry for the final passes."]):
        record_interaction(store, {"source": "claude-code", "session_id": "s", "id": f"cc-{i}", "prompt": prompt,
                                   "response": "ok"})
    results = propose_candidates(store, iter_interactions(store))
    assert len(results) == 2
    approve_review(store, results[0]["review"], REVIEWER)
    reject_review(store, results[1]["review"], "not a real preference", REVIEWER)
    assert [m.status for m in list_memories(store)] == ["active"]  # approval is what activates a candidate
    assert propose_candidates(store, iter_interactions(store)) == []


def test_dry_run_writes_nothing(store):
    record_interaction(store, {"source": "claude-code", "session_id": "s", "prompt": "Remember that the NAS is at rack 2.",
                               "response": "ok"})
    head = store.head()
    out = json.loads(run_cli("extract", "--dry-run", "--json", store=store).stdout)
    assert len(out) == 1 and store.head() == head and list_reviews(store) == []


def test_a_pattern_added_after_capture_still_keeps_the_secret_off_the_review(store):
    record_interaction(store, {"source": "claude-code", "session_id": "s", "id": "cc-late",
                               "prompt": "Remember that the lab door code is ZX-7781-Q for the night shift.",
                               "response": "Noted, ZX-7781-Q."})
    cfg = store.read("atocore.yaml").decode().replace("redact_patterns: []", "redact_patterns: ['ZX-\\d{4}-Q']")
    store.commit({"atocore.yaml": cfg.encode()}, "Redact door codes")
    [r] = propose_candidates(store, iter_interactions(store))
    p = get_review(store, r["review"])
    assert "ZX-7781-Q" not in r["memories"][0]["text"] and "[REDACTED:custom]" in r["memories"][0]["text"]
    assert all(b"ZX-7781-Q" not in raw for raw in p.files.values())
    assert "ZX-7781-Q" not in run_cli("review", "show", p.id, store=store).stdout
