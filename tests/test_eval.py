"""``atocore eval``: golden questions through the live search and context path, with a real
store, real index and the real model; the shared metrics of ``atocore.evaluation``; the
golden file's validation as a store record."""

from __future__ import annotations

import json
import math

import pytest

from atocore import evaluation as ev
from atocore.errors import ValidationError
from atocore.golden import evaluate_at, load_golden, run_questions
from atocore.records import parse_golden, validate_path
from atocore.review import propose
from atocore.retrieval import open_retriever

from .conftest import run_cli

# --------------------------------------------------------------------------- metrics


def test_metrics_follow_trec_eval_definitions():
    grades = {"a": 2, "b": 1, "c": 1}
    ranked = ["x", "a", "y", "c"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ev.ndcg(ranked, grades) == pytest.approx(dcg / idcg)
    assert ev.recall(ranked, grades) == pytest.approx(2 / 3)
    assert ev.mrr(ranked, grades) == pytest.approx(1 / 2)
    assert ev.ndcg(["a", "b", "c"], grades) == pytest.approx(1.0)


@pytest.mark.parametrize("ranked, grades, expected", [
    (["z"] * 0, {"a": 1}, (0.0, 0.0, 0.0)),          # nothing found
    (["a"], {"a": 1}, (1.0, 1.0, 1.0)),               # found first
    ([f"x{i}" for i in range(10)] + ["a"], {"a": 1}, (0.0, 0.0, 0.0)),  # found at rank 11: outside the top 10
])
def test_metric_edges(ranked, grades, expected):
    s = ev.score(ranked, grades)
    assert (s.ndcg, s.recall, s.mrr) == pytest.approx(expected)


def test_questions_without_relevant_documents_have_no_score_and_stay_out_of_means():
    assert ev.score(["a"], {}) is None
    assert ev.score(["a"], {"a": 0}) is None
    m = ev.mean([ev.score(["a"], {"a": 1}), None, ev.score(["b"], {"a": 1})])
    assert m.ndcg == pytest.approx(0.5)
    assert ev.mean([None]) is None


def test_documents_keeps_each_document_at_its_best_hit():
    assert ev.documents(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


# --------------------------------------------------------------------------- the golden file as a record

GOOD = b"""questions:
  - question: how fast do we home?
    project: printer
    sources: [homing.md]
  - id: bed
    question: bed size
    project: printer
    state: [bed-size]
"""


def test_a_good_golden_file_parses():
    qs = parse_golden(GOOD, "eval/golden.yaml")
    assert [q.sources for q in qs] == [["homing.md"], []]
    assert qs[1].id == "bed" and qs[1].state == ["bed-size"]


@pytest.mark.parametrize("raw, field, words", [
    (b"questions: []\n", "questions", "at least one question"),
    (b"qs: []\n", "qs", "unknown field"),
    (b"questions:\n- question: hi\n", "questions[0]", "needs what should be found"),
    (b"questions:\n- question: hi\n  state: [k]\n", "questions[0].state", "need the question's 'project'"),
    (b"questions:\n- question: hi\n  project: p\n  sources: [../etc/passwd]\n", "questions[0].sources[0]", "without '..'"),
    (b"questions:\n- question: hi\n  project: p\n  sources: [/abs.md]\n", "questions[0].sources[0]", "relative"),
    (b"questions:\n- {question: hi, sources: [a.md], colour: red}\n", "questions[0].colour", "unknown field"),
    (b"questions:\n- {question: '  ', sources: [a.md]}\n", "questions[0].question", "must not be empty"),
    (b"questions:\n- {question: hi, project: Not A Slug, sources: [a.md]}\n", "questions[0].project", "not a valid"),
    (b"questions:\n- {id: x, question: a, sources: [a.md]}\n- {id: x, question: b, sources: [b.md]}\n",
     "questions", "appears more than once"),
    (b"questions: [\n", "eval/golden.yaml", "not valid YAML"),
])
def test_a_bad_golden_file_is_refused_with_the_field_named(raw, field, words):
    with pytest.raises(ValidationError) as exc:
        validate_path("eval/golden.yaml", raw)
    assert exc.value.field == field
    assert words in str(exc.value)


def test_a_bad_golden_file_cannot_land_through_review(store):
    before = store.head()
    with pytest.raises(ValidationError):
        propose(store, {"eval/golden.yaml": b"questions:\n- question: hi\n"}, "golden", approve=True)
    assert store.head() == before
    assert store.blob_id("eval/golden.yaml") is None


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def printers(tmp_path, store):
    """Two registered projects with real documents, one trusted-state fact, indexed."""
    docs = tmp_path / "docs"
    (docs / "printer").mkdir(parents=True)
    (docs / "garden").mkdir()
    (docs / "printer" / "homing.md").write_text(
        "# Homing\n\nRun `home_all` before a print. The homing speed is `homing_feedrate_mm_s`.\n\n"
        "## Endstops\n\nThe X endstop sits on the left; check the switch wiring if homing fails.\n")
    (docs / "printer" / "temps.md").write_text(
        "# Temperatures\n\nThe hotend uses a PID loop: run `pid_autotune` after changing the heater cartridge.\n")
    (docs / "garden" / "watering.md").write_text(
        "# Watering\n\nTomatoes get two litres every morning; the drip controller opens `zone_valve_3`.\n")
    run_cli("project", "register", "printer", "--source", str(docs / "printer"), "--approve", store=store)
    run_cli("project", "register", "garden", "--source", str(docs / "garden"), "--approve", store=store)
    run_cli("state", "propose", "printer", "bed-size", "The print bed is 235 by 235 millimetres", "--approve",
            store=store)
    run_cli("refresh", store=store)
    golden = tmp_path / "golden.yaml"
    golden.write_text("""questions:
  - question: homing_feedrate_mm_s
    project: printer
    sources: [homing.md]
  - id: pid
    question: pid_autotune heater cartridge
    project: printer
    sources: [temps.md]
  - question: which valve waters the tomatoes, zone_valve_3
    project: garden
    sources: [watering.md]
  - id: bed
    question: how big is the print bed
    project: printer
    state: [bed-size]
""")
    return docs, golden


def test_eval_without_a_golden_file_says_where_to_put_it(store):
    p = run_cli("eval", store=store, check=False)
    assert p.returncode != 0
    assert "eval/golden.yaml is not in the store" in p.stderr


def test_propose_refuses_a_bad_local_file_naming_it(tmp_path, printers, store):
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions:\n- question: hi\n  state: [k]\n")
    p = run_cli("eval", "--propose", str(bad), "--approve", store=store, check=False)
    assert p.returncode != 0
    assert "bad.yaml: questions[0].state" in p.stderr
    assert store.blob_id("eval/golden.yaml") is None


def test_eval_scores_per_project_pinned_to_commit_and_model(printers, store, model_path):
    _, golden = printers
    run_cli("eval", "--propose", str(golden), "--approve", store=store)
    out = json.loads(run_cli("eval", "--json", store=store).stdout)
    head = store.head()
    assert out["commit"] == head and out["index_commit"] == head
    assert out["model"] and out["model"].startswith(model_path)
    assert set(out["projects"]) == {"printer", "garden", "all"}
    assert out["projects"]["printer"]["questions"] == 3
    by_key = {q["id"] or q["index"]: q for q in out["questions"]}
    # identifier-only questions find their file first; the state question finds the state entry
    assert by_key[0]["found"][0] == "printer/homing.md" and by_key[0]["ndcg@10"] == 1.0
    assert by_key["pid"]["found"][0] == "printer/temps.md"
    assert "printer/state/printer.yaml#bed-size" in by_key["bed"]["found"]
    assert by_key[0]["context_project"] == "printer"
    # the human table shows the same figures
    text = run_cli("eval", store=store).stdout
    assert f"store commit {head[:12]}" in text and "| garden | 1 |" in text


def test_compare_shows_what_a_refresh_changed(printers, store):
    docs, golden = printers
    run_cli("eval", "--propose", str(golden), "--approve", store=store)
    before = store.head()
    first = json.loads(run_cli("eval", "--json", store=store).stdout)
    assert {q["id"]: q["ndcg@10"] for q in first["questions"]}["pid"] == 1.0
    (docs / "printer" / "temps.md").unlink()
    run_cli("refresh", store=store)
    out = json.loads(run_cli("eval", "--json", "--compare", before, store=store).stdout)
    c = out["compare"]
    assert c["before"]["commit"] == before and c["after"]["commit"] == store.head()
    assert c["before"]["source"] == "kept"  # the run at `before` was kept under the index folder
    worst = c["changed"][0]
    assert worst["question"] == "pid" and worst["ndcg_before"] == 1.0 and worst["ndcg_after"] == 0.0
    assert c["projects"]["printer"]["ndcg@10"]["after"] < c["projects"]["printer"]["ndcg@10"]["before"]
    assert c["projects"]["garden"]["ndcg@10"]["after"] == c["projects"]["garden"]["ndcg@10"]["before"]


def test_an_earlier_commit_never_evaluated_is_evaluated_in_a_temporary_index(printers, store):
    docs, golden = printers
    run_cli("eval", "--propose", str(golden), "--approve", store=store)
    old = store.head()
    questions, blob = load_golden(store)
    (docs / "printer" / "temps.md").unlink()
    run_cli("refresh", store=store)
    index_before = sorted(p.name for p in store.index_dir.iterdir())
    then = evaluate_at(store, old, questions, "eval/golden.yaml", blob)
    assert then.commit == old and then.source == "now"
    assert {q.id: q.ndcg for q in then.questions}["pid"] == 1.0  # temps.md was there at `old`
    now = run_questions(store, open_retriever(store), questions, "eval/golden.yaml", blob)
    assert {q.id: q.ndcg for q in now.questions}["pid"] == 0.0
    # the store's own index and refs were left alone
    assert sorted(p.name for p in store.index_dir.iterdir()) == index_before
    assert store.resolve("main") != old


def test_memories_and_questions_without_a_project_are_judged_by_their_path(printers, store):
    from atocore.memories import add_memory

    mem = add_memory(store, "The nozzle wipe routine runs wipe_nozzle_twice before every first layer", "knowledge",
                     project="printer")
    questions = parse_golden(f"""questions:
  - question: wipe_nozzle_twice
    project: printer
    sources: [memories/{mem.id}.md]
  - question: zone_valve_3
    sources: [watering.md]
""".encode(), "eval/golden.yaml")
    run = run_questions(store, open_retriever(store), questions, "eval/golden.yaml", "0" * 40)
    by_q = {q.question: q for q in run.questions}
    assert by_q["wipe_nozzle_twice"].found[0] == f"memories/{mem.id}.md"
    assert by_q["wipe_nozzle_twice"].ndcg == 1.0
    assert by_q["zone_valve_3"].found[0] == "watering.md" and by_q["zone_valve_3"].ndcg == 1.0
    assert {q.project or "(any)" for q in run.questions} == set(run.by_project()) - {"all"}
