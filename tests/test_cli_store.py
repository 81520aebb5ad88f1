"""The store commands of the ``atocore`` CLI (binding shapes from DESIGN.md)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from atocore.cli import cli
from atocore.memories import get_memory, list_memories
from atocore.review import list_reviews
from atocore.state import get_state

from .conftest import run_cli
from .fixtures_store import fsck, git


def invoke(store, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--store", str(store.path), *args], catch_exceptions=False)
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    return result


def test_binding_shapes_through_the_real_command(tmp_path):
    path = tmp_path / "store"
    out = run_cli("init", str(path)).stdout
    assert "Created store" in out
    again = run_cli("init", str(path)).stdout
    assert "already an AtoCore store" in again
    mid = run_cli("memory", "add", "The lens mount is M42.", "--type", "knowledge", "--project", "optics",
                  store=path).stdout
    assert mid.strip() and mid == mid.strip() + "\n" and len(mid.split()) == 1  # only the new id
    listed = json.loads(run_cli("memory", "list", "--project", "optics", "--json", store=path).stdout)
    assert listed[0]["id"] == mid.strip() and listed[0]["type"] == "knowledge" and listed[0]["project"] == "optics"
    proc = run_cli("state", "propose", "optics", "lead", "Alice", "--category", "contact", "--approve", store=path)
    assert "Approved review" in proc.stdout
    bad = run_cli("memory", "add", "x", "--type", "rumour", store=path, check=False)
    assert bad.returncode != 0
    assert "type: 'rumour' is not allowed (allowed: identity, preference, project" in bad.stderr
    assert "Traceback" not in bad.stderr
    nostore = run_cli("status", check=False, env={"ATOCORE_STORE": ""})
    assert nostore.returncode != 0 and "pass --store PATH or set ATOCORE_STORE" in nostore.stderr
    fsck(path)


def test_init_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "full")])
    assert result.exit_code == 1 and "is not empty and is not an AtoCore store" in result.output


def test_memory_commands(store):
    mid = invoke(store, "memory", "add", "Alice prefers metric units", "--type", "preference", "--tag", "units"
                 ).output.strip()
    rev = store.head()
    assert mid in invoke(store, "memory", "list").output
    shown = invoke(store, "memory", "show", mid).output
    assert shown.startswith("---\n") and "Alice prefers metric units" in shown
    assert json.loads(invoke(store, "memory", "show", mid, "--json").output)["tags"] == ["units"]
    new = invoke(store, "memory", "supersede", mid, "Alice prefers SI units").output.strip()
    assert get_memory(store, mid).status == "superseded" and get_memory(store, new).supersedes == mid
    assert "is now invalid" in invoke(store, "memory", "invalidate", new, "--reason", "she said imperial").output
    assert json.loads(invoke(store, "memory", "show", mid, "--at", rev, "--json").output)["status"] == "active"
    assert [m["status"] for m in json.loads(invoke(store, "memory", "list", "--at", rev, "--json").output)] == ["active"]
    assert json.loads(invoke(store, "memory", "list", "--status", "active", "--json").output) == []
    hist = json.loads(invoke(store, "memory", "history", new, "--json").output)
    assert hist[0]["summary"].startswith("Invalidate") and "she said imperial" in hist[0]["message"]
    missing = invoke(store, "memory", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", code=1)
    assert "no memory" in missing.output
    assert "Missing option '--reason'" in invoke(store, "memory", "invalidate", mid, code=2).output


def test_state_and_review_commands(store):
    out = invoke(store, "state", "propose", "optics", "lead", "Alice", "--category", "contact").output
    rid = list_reviews(store)[0].id
    assert f"Proposed review {rid}" in out and f"atocore review approve {rid}" in out
    assert rid in invoke(store, "review", "list").output
    listed = json.loads(invoke(store, "review", "list", "--json").output)
    assert listed[0]["kind"] == "state" and listed[0]["approvable"] is True
    shown = invoke(store, "review", "show", rid).output
    assert "+++ b/state/optics.yaml" in shown and "+  value: Alice" in shown
    assert json.loads(invoke(store, "review", "show", rid, "--json").output)["paths"] == ["state/optics.yaml"]
    assert "has no trusted state" in invoke(store, "state", "show", "optics").output
    invoke(store, "review", "approve", rid, "--reviewer", "Bob <bob@example.org>")
    assert get_state(store, "optics").get("lead").value == "Alice"
    assert "Alice" in invoke(store, "state", "show", "optics").output
    before = store.head()
    invoke(store, "state", "propose", "optics", "lead", "Mallory")
    rid2 = list_reviews(store)[0].id
    assert "recorded in main" in invoke(store, "review", "reject", rid2, "--reason", "no").output
    assert json.loads(invoke(store, "state", "show", "optics", "--at", before, "--json").output)["entries"][0][
        "value"] == "Alice"
    assert "Reject review" in invoke(store, "log", "-n", "1").output
    (hist,) = json.loads(invoke(store, "state", "history", "optics", "--json").output)
    assert hist["summary"].startswith(f"Approve review {rid}") and "Reviewed-by: Bob" in hist["message"]
    err = invoke(store, "review", "approve", "nope", code=1).output
    assert "no open review 'nope'" in err


def test_pushed_bad_branch_cannot_be_approved_from_the_cli(store, tmp_path):
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    git("checkout", "-q", "-b", "review/pat-typo", cwd=work)
    (work / "state").mkdir()
    (work / "state" / "optics.yaml").write_text("project: optics\nentries:\n- category: gossip\n  key: k\n  value: v\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "Typo in category", cwd=work)
    git("push", "-q", "origin", "review/pat-typo", cwd=work)
    assert "pat-typo" in invoke(store, "review", "list").output and "problem" in invoke(store, "review", "list").output
    shown = invoke(store, "review", "show", "pat-typo").output
    assert "problems (cannot be approved)" in shown and "'gossip' is not allowed" in shown
    out = invoke(store, "review", "approve", "pat-typo", code=1).output
    assert "cannot be approved until its problems are fixed" in out
    assert list_memories(store) == [] and get_state(store, "optics").entries == []


def test_status_log_show(store):
    invoke(store, "memory", "add", "a", "--type", "episodic")
    invoke(store, "state", "propose", "optics", "lead", "Alice")
    store.commit({"memories/broken.md": b"oops"}, "a bad push")
    status = json.loads(invoke(store, "status", "--json", "--no-index").output)
    assert status["head"] == store.head()
    assert status["counts"]["memories"] == 1 and status["counts"]["memories_by_status"] == {"active": 1}
    assert len(status["reviews"]) == 1 and status["invalid"][0].startswith("memories/broken.md")
    human = invoke(store, "status").output  # with the index section (guarded import)
    assert "memories: 1 (1 active)" in human and "reviews:  1 pending" in human and "index:" in human
    assert "a bad push" in invoke(store, "log").output
    assert json.loads(invoke(store, "log", "--json", "-n", "2").output)[0]["summary"] == "a bad push"
    assert invoke(store, "show", "atocore.yaml").output.startswith("# AtoCore store configuration")
    assert invoke(store, "show", "memories/broken.md", "--at", "main~1", code=1).output.startswith("Error:")
    assert "--at REV" in invoke(store, "memory", "list", "--help").output


@pytest.mark.parametrize("args", [["memory", "--help"], ["state", "--help"], ["review", "--help"], ["init", "--help"]])
def test_help_reads_well(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage: " in result.output
