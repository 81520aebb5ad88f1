"""Project registration (reviewed), listing, updating, and project inference."""

from __future__ import annotations

import pytest

from atocore.errors import NotFound, ValidationError
from atocore.projects import get_project, infer_project, list_projects, register_project, update_project
from atocore.review import approve_review, list_reviews
from tests.conftest import run_cli
from tests.fixtures_server import OPTICS_DOCS, ROBOT_DOCS, two_projects, write_tree  # noqa: F401


def test_register_proposes_for_review_unless_approved(store, tmp_path):
    docs = write_tree(tmp_path / "docs", OPTICS_DOCS)
    p = register_project(store, "p04", [docs], aliases=["primary mirror"], description="Optics")
    assert p.status == "open" and p.paths == ["projects/p04.yaml"]
    with pytest.raises(NotFound) as exc:
        get_project(store, "p04")
    assert p.id in str(exc.value)  # says which review holds it
    pending = list_projects(store, include_pending=True)
    assert [(r["id"], r["status"], r["review"]) for r in pending] == [("p04", "proposed", p.id)]
    approve_review(store, p.id, "Rev <rev@example.com>")
    proj = get_project(store, "p04")
    assert proj.status == "approved" and proj.aliases == ["primary mirror"]
    assert proj.sources[0].path == str(docs.resolve())
    assert list_reviews(store) == []


def test_register_validates_input(store, tmp_path):
    with pytest.raises(ValidationError) as exc:
        register_project(store, "Bad Id", [tmp_path])
    assert exc.value.field == "id"
    with pytest.raises(ValidationError) as exc:
        register_project(store, "p1", [tmp_path / "missing"])
    assert exc.value.field == "source"
    register_project(store, "p1", [tmp_path], approve=True)
    with pytest.raises(ValidationError):
        register_project(store, "p1", [tmp_path], approve=True)


def test_update_refines_aliases_and_globs_through_review(store, tmp_path):
    register_project(store, "p04", [tmp_path], aliases=["mirror"], approve=True)
    p = update_project(store, "p04", add_aliases=["big glass"], remove_aliases=["mirror"], exclude=["drafts/**"],
                       description="Primary mirror")
    assert get_project(store, "p04").aliases == ["mirror"]  # not yet: it waits for review
    approve_review(store, p.id, None)
    proj = get_project(store, "p04")
    assert proj.aliases == ["big glass"] and proj.sources[0].exclude == ["drafts/**"]
    assert proj.description == "Primary mirror"
    with pytest.raises(ValidationError):
        update_project(store, "p04", remove_aliases=["nope"])


def test_cli_register_list_show(store, tmp_path):
    docs = write_tree(tmp_path / "docs", ROBOT_DOCS)
    out = run_cli("project", "register", "rover", "--source", str(docs), "--alias", "rv-2", "--alias", "the rover",
                  "--description", "A rover", "--approve", store=store).stdout
    assert "approved" in out
    assert "rover" in run_cli("project", "list", store=store).stdout
    shown = run_cli("project", "show", "rover", "--json", store=store).stdout
    assert '"rv-2"' in shown
    bad = run_cli("project", "register", "x", "--source", str(tmp_path / "nope"), store=store, check=False)
    assert bad.returncode != 0 and "source" in bad.stderr


# --------------------------------------------------------------------------- inference


def test_inference_by_id_name_alias_and_none(two_projects):
    s = two_projects
    assert infer_project(s, "what is the status of rover?")[0] == "rover"
    assert infer_project(s, "Tell me about the Mars Rover gripper")[0] == "rover"
    pid, conf, reasons = infer_project(s, "how flat is the big glass now?")
    assert pid == "p04" and conf >= 0.5 and any("alias" in r for r in reasons)
    assert infer_project(s, "RV-2 firmware")[0] == "rover"  # case-insensitive, whole word
    assert infer_project(s, "what's for lunch?")[0] is None
    assert infer_project(s, "p04x and roverish")[0] is None  # no partial-word matches


def test_inference_ambiguous_is_null(two_projects):
    pid, conf, reasons = infer_project(two_projects, "compare the p04 schedule with the rover schedule")
    assert pid is None and any("unclear" in r for r in reasons)


def test_inference_from_cwd(two_projects, tmp_path):
    sub = tmp_path / "robot" / "deep"
    sub.mkdir()
    pid, conf, reasons = infer_project(two_projects, "what should I do next?", cwd=str(sub))
    assert pid == "rover" and conf >= 0.9


def test_inference_from_retrieval_evidence(two_projects):
    from atocore.retrieval import open_retriever

    r = open_retriever(two_projects)
    pid, conf, reasons = infer_project(two_projects, "interferometer figure error at 633 nm", retriever=r)
    assert pid == "p04" and any("retrieval" in x for x in reasons)
    assert infer_project(two_projects, "zzz qqq", retriever=r)[0] is None
