"""The HTTP service over real uvicorn on loopback, driven with httpx."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from atocore.errors import ValidationError
from atocore.memories import add_memory
from atocore.server.run import check_bind
from atocore.store import Store
from tests.conftest import run_cli
from tests.fixtures_server import served, served_token, serve_store, two_projects  # noqa: F401

TOKEN = "s3cret-token"


def test_health_reports_build_store_and_index(served):
    with served.client() as c:
        h = c.get("/health").json()
    assert h["status"] in ("ok", "degraded")
    for key in ("version", "build_sha", "build_time", "build_branch"):
        assert h[key]
    assert h["store"]["head"] == served.service.store.head()
    assert h["index"]["commit"] == h["store"]["head"] and h["index"]["stale"] is False
    assert "degraded" in h["index"]


def test_search_binding_shape(served):
    with served.client() as c:
        r = c.post("/search", json={"query": "gripper servo", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"project", "hits"} and len(body["hits"]) <= 3
    hit = body["hits"][0]
    assert set(hit) >= {"id", "kind", "project", "source", "text", "score"} and hit["project"] == "rover"


def test_context_build_and_debug_context_equal(served):
    with served.client() as c:
        r = c.post("/context/build", json={"prompt": "How is the primary mirror polished?", "budget_chars": 1500})
        assert r.status_code == 200
        built = r.json()
        assert built["project"] == "p04" and built["context"] and len(built["context"]) <= 1500
        assert built["items"][0]["kind"] == "state"
        assert c.get("/debug/context").json() == built
    from atocore.context import load_last_build

    deadline = time.monotonic() + 10  # persisted off the request path, within milliseconds
    while load_last_build(served.service.store) != built and time.monotonic() < deadline:
        time.sleep(0.01)
    assert load_last_build(served.service.store) == built  # what the CLI's debug-context reads


def test_fast_path_and_fastapi_route_answer_alike(served):
    # A well-formed body takes the lean path; the same body with the optional field spelt out
    # as null goes the same way; a string budget is refused by both alike (no coercion).
    with served.client() as c:
        fast = c.post("/context/build", json={"prompt": "pitch lap cerium", "project": "p04", "budget_chars": 1500})
        other = c.post("/context/build", json={"prompt": "pitch lap cerium", "project": "p04", "budget_chars": 1500,
                                                "cwd": None})
        bad = c.post("/context/build", json={"prompt": "pitch lap cerium", "project": "p04", "budget_chars": "1500"})
        extra = c.post("/context/build", json={"prompt": "pitch lap cerium", "budget": 1500})
    assert fast.status_code == other.status_code == 200
    assert bad.status_code == 422 and bad.json()["field"] == "budget_chars"
    assert extra.status_code == 422 and extra.json()["field"] == "budget"
    a, b = fast.json(), other.json()
    for volatile in ("elapsed_ms", "created"):
        a.pop(volatile), b.pop(volatile)
    assert a == b and a["items"]


def test_context_formats_and_bad_input(served):
    with served.client() as c:
        xml = c.post("/context/build", json={"prompt": "gripper", "project": "rover", "format": "xml"}).json()
        assert xml["context"].startswith("<atocore_context") and xml["format"] == "xml"
        r = c.post("/context/build", json={"prompt": "x", "format": "yaml"})
        assert r.status_code == 422 and r.json()["field"] == "format" and "markdown" in r.json()["allowed"]
        r = c.post("/context/build", json={"budget_chars": 10})
        body = r.json()
        assert r.status_code == 422 and body["field"] == "prompt" and "required" in body["message"]
        assert {p["field"] for p in body["problems"]} == {"prompt", "budget_chars"}
        r = c.post("/context/build", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["field"] == "body"
        r = c.post("/context/build", json=["a list"])
        assert r.status_code == 422
        r = c.post("/context/build", json={"prompt": "x", "project": "Not A Slug"})
        assert r.status_code == 422 and r.json()["field"] == "project"
        assert c.get("/nope").status_code == 404 and "error" in c.get("/nope").json()
        assert c.get("/formats").json()[0]["name"]


def test_body_size_limit(two_projects):
    with serve_store(two_projects, max_body=10_000) as s, s.client() as c:
        r = c.post("/context/build", json={"prompt": "x" * 20_000})
        assert r.status_code == 413 and r.json()["error"] == "TooLarge"

        def chunks():
            for _ in range(20):
                yield b"x" * 1000

        r = c.post("/context/build", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_writes_need_the_token(served_token, tmp_path):
    body = {"text": "Remember: the lap is recut every ten runs", "type": "knowledge", "project": "p04"}
    with served_token.client() as anon, served_token.client(TOKEN) as auth, served_token.client("wrong") as bad:
        assert anon.post("/memories", json=body).status_code == 401
        assert bad.post("/memories", json=body).status_code == 403
        assert anon.post("/interactions", json={}).status_code == 401
        assert anon.post("/refresh", json={}).status_code == 401
        assert anon.post("/admin/backup", json={}).status_code == 401
        # reads stay open
        assert anon.post("/context/build", json={"prompt": "lap"}).status_code == 200
        assert anon.get("/memories", params={"project": "p04"}).status_code == 200
        r = auth.post("/memories", json=body)
        assert r.status_code == 201
        mid = r.json()["id"]
        assert anon.get(f"/memories/{mid}").json()["text"] == body["text"]
        r = auth.post("/memories", json={**body, "type": "fact"})
        assert r.status_code == 422 and r.json()["field"] == "type" and "knowledge" in r.json()["allowed"]


def test_admin_needs_a_configured_token(served):
    with served.client() as c:
        r = c.post("/admin/restore", json={"rev": "main~1", "dry_run": True})
        assert r.status_code == 403 and "ATOCORE_TOKEN" in r.json()["message"]


def test_admin_restore_dry_run_with_token(served_token):
    with served_token.client(TOKEN) as c:
        r = c.post("/admin/restore", json={"rev": "main~1", "dry_run": True})
        assert r.status_code == 200 and r.json()["dry_run"] is True
        assert c.post("/admin/restore", json={"rev": "no-such-rev"}).status_code == 404


def test_interactions_endpoint_records_and_indexes(served):
    turn = {"source": "claude-code", "session_id": "s-1", "prompt": "How do we recut the lap?",
            "response": "The zebra-striped lap is recut with a grooving tool every ten runs."}
    with served.client() as c:
        r = c.post("/interactions", json=turn)
        assert r.status_code == 201 and r.json()["created"] is True
        assert c.post("/interactions", json=turn).json()["created"] is False
        assert c.post("/interactions", json={"source": "x"}).status_code == 422
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            hits = c.post("/search", json={"query": "zebra-striped grooving"}).json()["hits"]
            if hits and "zebra" in hits[0]["text"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the captured turn never became searchable")


def test_projects_state_and_reviews_endpoints(served, tmp_path):
    docs = tmp_path / "newdocs"
    docs.mkdir()
    (docs / "a.md").write_text("# Antenna\n\nThe dish is 3 m wide.\n")
    with served.client() as c:
        assert {p["id"] for p in c.get("/projects").json()} == {"p04", "rover"}
        assert c.get("/projects/p04").json()["aliases"] == ["primary mirror", "big glass"]
        assert c.get("/projects/nope").status_code == 404
        assert c.get("/state/p04").json()["entries"][0]["key"] == "focus"
        r = c.post("/projects", json={"id": "dish", "sources": [{"path": str(docs)}], "aliases": ["antenna"]})
        assert r.status_code == 201
        rid = r.json()["id"]
        assert any(p["id"] == "dish" for p in c.get("/projects", params={"pending": True}).json())
        assert c.get(f"/reviews/{rid}").json()["paths"] == ["projects/dish.yaml"]
        assert [x["id"] for x in c.get("/reviews").json()] == [rid]
        assert c.post(f"/reviews/{rid}/approve", json={}).json()["status"] == "approved"
        r = c.post("/refresh", json={"project": "dish"})
        assert r.status_code == 200 and r.json()[0]["added"] == ["a.md"]
        assert c.post("/refresh", json={"project": "missing"}).status_code == 404
        ctx = c.post("/context/build", json={"prompt": "how wide is the antenna dish?"}).json()
        assert ctx["project"] == "dish" and "3 m wide" in ctx["context"]
        assert c.post("/reviews/nope/reject", json={"reason": "no"}).status_code == 404


def test_external_main_move_is_reindexed_without_restart(served):
    with served.client() as c:
        before = c.get("/health").json()["index"]["commit"]
        # Another process writes to the store (like a push from a clone or `atocore memory add`).
        other = Store(served.service.store.path)
        add_memory(other, "The quokka calibration target lives in cabinet seven", "knowledge", project="p04")
        head = other.head()
        assert head != before
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if c.get("/health").json()["index"]["commit"] == head:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the service did not re-index after main moved")
        hits = c.post("/search", json={"query": "quokka calibration target"}).json()["hits"]
        assert hits and "quokka" in hits[0]["text"]


def test_external_push_from_a_git_clone_is_reindexed(served, tmp_path):
    store_path = served.service.store.path
    work = tmp_path / "clone"
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "clone", "-q", str(store_path), str(work)], check=True)
    (work / "sources" / "p04" / "pushed.md").write_text("# Pushed\n\nThe narwhal fixture holds the secondary.\n")
    subprocess.run([*git, "-C", str(work), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "Add a doc from a clone"], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True)
    with served.client() as c:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            hits = c.post("/search", json={"query": "narwhal fixture", "project": "p04"}).json()["hits"]
            if hits and "narwhal" in hits[0]["text"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("a push from a clone was not indexed")


def test_check_bind_refuses_network_without_token():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "tok")
    with pytest.raises(ValidationError) as exc:
        check_bind("0.0.0.0", None)
    assert exc.value.field == "host"


def test_serve_cli_refuses_non_loopback_without_token(two_projects):
    proc = subprocess.run([sys.executable, "-m", "atocore", "--store", str(two_projects.path), "serve", "--host",
                           "0.0.0.0", "--port", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "ATOCORE_TOKEN" in proc.stderr


def test_openapi_docs_served(served):
    with served.client() as c:
        spec = c.get("/openapi.json").json()
        assert {"/health", "/search", "/context/build", "/debug/context", "/interactions"} <= set(spec["paths"])
        assert c.get("/docs").status_code == 200


def test_refresh_in_progress_is_a_clear_409(served):
    from atocore.projects.refresh import refresh_lock

    with refresh_lock(served.service.store), served.client() as c:
        r = c.post("/refresh", json={"project": "p04"})
        assert r.status_code == 409 and "refresh in progress" in r.json()["message"]
    with served.client() as c:
        r = c.post("/refresh", json={"project": "p04"})
        assert r.status_code == 200 and r.json()[0]["commit"] is None  # nothing changed since the fixture


def test_second_service_on_the_same_store_is_refused(served):
    proc = subprocess.run([sys.executable, "-m", "atocore", "--store", str(served.service.store.path), "serve",
                           "--port", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "already serves" in proc.stderr


def test_missing_index_is_built_in_the_background(store, tmp_path):
    from atocore.projects import refresh, register_project
    from atocore.state import propose_state
    from tests.fixtures_server import OPTICS_DOCS, write_tree

    register_project(store, "p04", [write_tree(tmp_path / "o", OPTICS_DOCS)], approve=True)
    propose_state(store, "p04", "focus", "Interferometry by March", category="focus", approve=True)
    refresh(store, "p04")  # staged, never indexed (like a fresh clone)
    with serve_store(store) as s, s.client() as c:
        r = c.post("/context/build", json={"prompt": "interferometer", "project": "p04"})
        assert r.status_code == 200 and r.json()["items"][0]["kind"] == "state"
        deadline = time.monotonic() + 60
        while c.get("/health").json()["index"]["commit"] != store.head():
            assert time.monotonic() < deadline, "the index was never built"
            time.sleep(0.05)
        hits = c.post("/search", json={"query": "Fizeau interferometer"}).json()["hits"]
        assert hits and hits[0]["source"] == "metrology/interferometer.md"


def test_last_context_keeps_no_raw_secret_and_debug_needs_the_token(two_projects):
    """Issue 12, row 4: the prompt hook sends the user's prompt; a secret in it must not rest on disk
    (atocore-index/last-context.json, owner-only) nor be served to anyone without the token."""
    import os
    import stat

    from atocore.context.build import last_build_path

    secret = "Sunshine42!xq"
    prompt = f"why does login fail? my password is {secret} and DB_PASS={secret}"
    with serve_store(two_projects, token="s3cret-token") as s:
        with s.client() as anon, s.client("s3cret-token") as c:
            r = c.post("/context/build", json={"prompt": prompt})
            assert r.status_code == 200 and r.json()["prompt"] == prompt  # the caller gets its own prompt back
            assert anon.get("/debug/context").status_code == 401
            assert anon.get("/debug/context", headers={"Authorization": "Bearer wrong"}).status_code == 403
            d = c.get("/debug/context")
            assert d.status_code == 200 and secret not in d.text and "[REDACTED:" in d.json()["prompt"]
        path = last_build_path(two_projects)
        deadline = time.monotonic() + 10
        while not (path.exists() and "why does login fail" in path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
    raw = path.read_text()
    assert "why does login fail" in raw and secret not in raw
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cli = run_cli("debug-context", store=two_projects).stdout
    assert secret not in cli


def test_debug_context_without_a_token_is_open_on_loopback_but_redacted(served):
    with served.client() as c:
        c.post("/context/build", json={"prompt": "the wifi password is Orbit2026#x"})
        d = c.get("/debug/context")
        assert d.status_code == 200 and "Orbit2026#x" not in d.text
