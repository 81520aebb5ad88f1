"""The MCP server: streamable HTTP at /mcp in a real uvicorn service, and `atocore mcp` over stdio,
both driven by the MCP SDK's own client (initialize, tools/list, tools/call)."""

from __future__ import annotations

import os
import sys

import anyio
import httpx
import httpx2
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from atocore.memories import list_memories
from atocore.review import get_review
from tests.fixtures_server import free_port, serve_store, served, served_token, two_projects  # noqa: F401

TOKEN = "s3cret-token"
TOOLS = {"search", "context", "project_state", "list_projects", "remember"}


def text_of(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def payload(result) -> dict:
    """The API payload of a tool result. Never ``structuredContent``: Claude Code shows the model
    only that when present, and the curated text (sources, "NOT active") would never reach it."""
    from atocore.mcp.server import payload_of

    assert result.structured_content is None
    data = payload_of(result)
    assert isinstance(data, dict), result
    return data


async def _http_session(url: str, calls, headers: dict | None = None):
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30, trust_env=False) as http, \
            streamable_http_client(url + "/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        init = await session.initialize()
        return init, await calls(session)


def over_http(url: str, calls, headers: dict | None = None):
    return anyio.run(_http_session, url, calls, headers)


def review_refs(store) -> list[str]:
    return sorted(store.refs(b"refs/heads/review/"))


# --------------------------------------------------------------------------- streamable HTTP


def test_http_tools_answer_with_provenance_and_remember_only_proposes(served):
    store = served.service.store
    main_before = store.head()
    with served.client() as c:
        rest_search = c.post("/search", json={"query": "gripper servo", "k": 3}).json()
        rest_state = c.get("/state/p04").json()

    async def calls(s: ClientSession):
        out = {"tools": await s.list_tools()}
        out["search"] = await s.call_tool("search", {"query": "gripper servo", "k": 3})
        out["context"] = await s.call_tool("context", {"prompt": "How is the primary mirror polished?",
                                                       "project": "p04"})
        out["state"] = await s.call_tool("project_state", {"project": "p04"})
        out["no_state"] = await s.call_tool("project_state", {"project": "nosuch"})
        out["projects"] = await s.call_tool("list_projects", {})
        out["remember"] = await s.call_tool("remember", {"text": "The P04 lap is recut with a brass tool",
                                                         "type": "project", "project": "p04"})
        out["again"] = await s.call_tool("remember", {"text": "The P04 lap is recut with a brass tool.",
                                                      "type": "project", "project": "p04"})
        out["bad_type"] = await s.call_tool("remember", {"text": "x is y", "type": "rumour"})
        out["bad_project"] = await s.call_tool("remember", {"text": "Lap pitch is soft", "type": "project",
                                                            "project": "nosuch"})
        out["bad_slug"] = await s.call_tool("search", {"query": "x", "project": "Not A Slug"})
        return out

    init, out = over_http(served.url, calls)
    assert init.server_info.name == "atocore"
    tools = {t.name: t for t in out["tools"].tools}
    assert set(tools) == TOOLS
    assert tools["search"].annotations.read_only_hint and not tools["remember"].annotations.read_only_hint
    assert "ctx" not in tools["remember"].input_schema["properties"]
    assert tools["remember"].input_schema["properties"]["type"]["enum"][0] == "identity"

    # search: the same hits as POST /search, with source, store path and commit in the text
    res = out["search"]
    assert not res.is_error
    assert [h["id"] for h in payload(res)["hits"]] == [h["id"] for h in rest_search["hits"]]
    top = rest_search["hits"][0]
    assert top["project"] == "rover" and top["source"] in text_of(res) and top["commit"][:12] in text_of(res)

    # context: the supplement, state first, with sources
    ctx = out["context"]
    assert not ctx.is_error and payload(ctx)["project"] == "p04"
    assert "cerium" in text_of(ctx) and "Pitch lap diameter is 300 mm" in text_of(ctx)
    assert "polishing.md" in text_of(ctx) and "given" in text_of(ctx)

    # trusted state and projects
    st = out["state"]
    assert payload(st)["entries"] == rest_state["entries"]
    assert "lap-size: Pitch lap diameter is 300 mm" in text_of(st) and "state/p04.yaml#lap-size" in text_of(st)
    assert "not a registered project" in text_of(out["no_state"]) and "p04" in text_of(out["no_state"])
    assert {p["id"] for p in payload(out["projects"])["projects"]} == {"p04", "rover"}
    assert "rover — Mars rover" in text_of(out["projects"])

    # remember: a review branch with a candidate memory; main and the active memories untouched
    rem = out["remember"]
    assert not rem.is_error, text_of(rem)
    rid = payload(rem)["review"]
    assert rid.startswith("remember-") and "NOT active" in text_of(rem)
    assert review_refs(store) == [f"refs/heads/review/{rid}"]
    assert store.head() == main_before
    assert [m.status for m in list_memories(store, project="p04")] == ["active"]
    prop = get_review(store, rid)
    assert prop.kind == "memory" and prop.approvable
    (path,) = prop.paths
    body = prop.files[path].decode()
    assert "status: candidate" in body and "The P04 lap is recut with a brass tool" in body
    # the same text again (punctuation aside) is not proposed twice
    assert payload(out["again"])["proposed"] is False and len(review_refs(store)) == 1

    # bad input: a tool error naming the field and what is allowed; nothing written
    assert out["bad_type"].is_error and "type" in text_of(out["bad_type"])
    assert out["bad_project"].is_error and "project" in text_of(out["bad_project"])
    assert "p04" in text_of(out["bad_project"])
    assert out["bad_slug"].is_error and "project" in text_of(out["bad_slug"])
    assert len(review_refs(store)) == 1 and store.head() == main_before


def test_http_remember_needs_the_service_token(served_token):
    store = served_token.service.store

    async def calls(s: ClientSession):
        return (await s.call_tool("search", {"query": "gripper"}),
                await s.call_tool("remember", {"text": "The rover gripper has four fingers", "type": "project",
                                               "project": "rover"}))

    _, (found, refused) = over_http(served_token.url, calls)
    assert not found.is_error and payload(found)["hits"]  # reads need no token, like REST
    assert refused.is_error and "Bearer" in text_of(refused) and review_refs(store) == []
    _, (_, wrong) = over_http(served_token.url, calls, {"Authorization": "Bearer nope"})
    assert wrong.is_error and "not the service's token" in text_of(wrong) and review_refs(store) == []
    _, (_, ok) = over_http(served_token.url, calls, {"Authorization": f"Bearer {TOKEN}"})
    assert not ok.is_error and len(review_refs(store)) == 1


def test_http_endpoint_hosts_and_neighbours(served):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    with served.client() as c:
        ok = c.post("/mcp", json=init, headers=headers)
        bare_host = c.post("/mcp", json=init, headers={**headers, "Host": "127.0.0.1"})
        localhost = c.post("/mcp", json=init, headers={**headers, "Host": "localhost:8100"})
        foreign = c.post("/mcp", json=init, headers={**headers, "Host": "evil.example"})
        # a client on an older protocol revision, one POST per message, no session kept
        v = {**headers, "MCP-Protocol-Version": "2025-06-18"}
        note = c.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=v)
        listed = c.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                      "params": {"name": "list_projects", "arguments": {}}}, headers=v)
        missing = c.get("/no/such/path")
        openapi = c.get("/openapi.json").json()
    assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "atocore"
    assert ok.headers["content-type"].startswith("application/json")  # json_response, no SSE stream
    assert bare_host.status_code == 200 and localhost.status_code == 200  # the SDK default refuses the first
    assert foreign.status_code == 421 and foreign.json()["field"] == "Host"  # DNS-rebinding protection
    assert note.status_code == 202
    assert listed.status_code == 200, listed.text
    result = listed.json()["result"]
    assert "p04 — P04 telescope" in result["content"][0]["text"]
    assert {p["id"] for p in result["_meta"]["atocore/payload"]["projects"]} == {"p04", "rover"}
    assert "structuredContent" not in result  # the model reads the text, not a JSON copy of it
    assert missing.status_code == 404 and missing.json()["error"]  # AtoCore's JSON 404s are unchanged
    assert "/mcp" not in openapi["paths"]


# --------------------------------------------------------------------------- stdio


def _stdio_env(**extra: str) -> dict[str, str]:
    keep = ("ATOCORE_EMBED_MODEL", "HF_HUB_OFFLINE", "ATOCORE_HOME", "PATH", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(extra)
    return env


async def _stdio_session(env: dict, tmp: str, calls):
    params = StdioServerParameters(command=sys.executable, args=["-m", "atocore", "mcp"], env=env, cwd=tmp)
    with open(os.path.join(tmp, "mcp-stderr.log"), "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
            init = await s.initialize()
            return init, await calls(s)


async def _stdio_calls(s: ClientSession):
    return {"tools": await s.list_tools(),
            "search": await s.call_tool("search", {"query": "Fizeau interferometer", "project": "p04", "k": 2}),
            "state": await s.call_tool("project_state", {"project": "rover"}),
            "context": await s.call_tool("context", {"prompt": "rover gripper firmware control rate"}),
            "remember": await s.call_tool("remember", {"text": "Rover firmware builds use GCC 13 only",
                                                       "type": "project", "project": "rover"})}


def test_stdio_uses_the_service_when_up_and_the_store_when_not(two_projects, tmp_path):
    store = two_projects
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    # 1. no service: straight from ATOCORE_STORE
    env = _stdio_env(ATOCORE_STORE=str(store.path), ATOCORE_URL=dead)
    init, out = anyio.run(_stdio_session, env, str(tmp_path), _stdio_calls)
    assert init.server_info.name == "atocore"
    assert {t.name for t in out["tools"].tools} == TOOLS
    hits = payload(out["search"])["hits"]
    assert payload(out["search"])["via"] == "store"
    assert hits and hits[0]["source"] == "metrology/interferometer.md" and "633 nm" in text_of(out["search"])
    assert "Gripper firmware v2 in test" in text_of(out["state"])
    assert payload(out["context"])["project"] == "rover" and "STM32" in text_of(out["context"])
    rem = out["remember"]
    assert not rem.is_error, text_of(rem)
    assert payload(rem)["via"] == "store" and review_refs(store) == [
        f"refs/heads/review/{payload(rem)['review']}"]

    # 2. the service is up (with a token): answers and the write go through it
    with serve_store(store, token=TOKEN) as srv:
        env = _stdio_env(ATOCORE_STORE=str(store.path), ATOCORE_URL=srv.url, ATOCORE_TOKEN=TOKEN)

        async def calls(s: ClientSession):
            return (await s.call_tool("search", {"query": "gripper servo", "k": 3}),
                    await s.call_tool("remember", {"text": "Navigation grid cells are 5 cm wide now",
                                                   "type": "project", "project": "rover"}))

        _, (found, rem2) = anyio.run(_stdio_session, env, str(tmp_path), calls)
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            rest = c.post("/search", json={"query": "gripper servo", "k": 3}).json()
    assert payload(found)["via"] == "service"
    assert [h["id"] for h in payload(found)["hits"]] == [h["id"] for h in rest["hits"]]
    assert not rem2.is_error, text_of(rem2)
    assert payload(rem2)["via"] == "service" and len(review_refs(store)) == 2
    assert [m.status for m in list_memories(store, project="rover")] == ["active"]


def test_mcp_is_not_imported_by_the_cli_hook_path():
    import subprocess

    code = ("import sys; from atocore.cli import cli, COMMANDS; import atocore.cli.mcp_cmds; "
            "assert COMMANDS['mcp'] == 'mcp_cmds:mcp'; "
            "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', 'atocore.mcp'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_sdk_host_check_gives_way_to_the_services():
    from atocore.mcp.http import transport_security

    assert transport_security().enable_dns_rebinding_protection is False  # server/hosts.HostCheck runs first


def test_remember_redacts_secrets_before_proposing(store):
    from atocore.api import propose_memory

    key = "sk-ant-api03-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2
    res = propose_memory(store, f"The staging deploy uses the key {key} for the Anthropic API", "knowledge")
    assert res["proposed"] and key not in res["memory"]["text"]
    assert "[REDACTED:anthropic-key]" in res["memory"]["text"]
    files = get_review(store, res["review"]).files
    assert files and all(key.encode() not in (raw or b"") for raw in files.values())
