"""AtoCore as an MCP server: explicit lookups for assistants, and candidate memories for review.

``build_server(backend)`` returns an ``mcp.server.MCPServer`` (MCP Python SDK 2.x) with five
tools. The same server object is served over stdio (``atocore mcp``, atocore/cli/mcp_cmds.py)
or streamable HTTP at ``/mcp`` in the service (atocore/mcp/http.py). Answers come from a
backend (atocore/mcp/backends.py) that returns the query layer's (atocore/api) payloads; each tool turns
that payload into short factual text with its provenance (store path, lines, commit); the payload
itself travels in the result's ``_meta`` under ``atocore/payload``, never as ``structuredContent``:
Claude Code (2.1.332) gives the model only ``structuredContent`` when a result has it, which
would hide the curated text and cost ~3x the tokens. See docs/mcp.md.

Imported only by those two entry points: it pulls in the MCP SDK (never on the hook path).
"""

import logging
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from .. import __version__
from ..errors import AtoCoreError
from .backends import Backend

MemoryType = Literal["identity", "preference", "project", "episodic", "knowledge", "adaptation"]
Project = Annotated[str | None, Field(description="Project id (see list_projects). Omit to let AtoCore "
                                                  "infer it from the text", max_length=64)]
SNIPPET_CHARS = 700

INSTRUCTIONS = (
    "AtoCore holds this engineer's trusted project state, reviewed memories and project documents, "
    "kept in a git store. Use `search` for facts and passages with their sources, `context` for the "
    "same supplement AtoCore adds to prompts automatically, `project_state` for a project's trusted "
    "decisions and status, `list_projects` for the project ids. `remember` only proposes a candidate "
    "memory: a person reviews it before it is used. Cite the `source` of what you use."
)

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)


def _short(sha: str | None) -> str:
    return (sha or "?")[:12]


PAYLOAD_KEY = "atocore/payload"  # the API's JSON payload, for programs (not shown to models)


def _result(text: str, data: Any, via: str) -> CallToolResult:
    payload = dict(data) if isinstance(data, dict) else {"items": data}
    payload["via"] = via
    return CallToolResult(content=[TextContent(type="text", text=text)], _meta={PAYLOAD_KEY: payload})


def payload_of(result: Any) -> dict | None:
    """The JSON payload of one of our tool results (client side)."""
    meta = getattr(result, "meta", None)
    data = meta.get(PAYLOAD_KEY) if isinstance(meta, dict) else None
    return data if isinstance(data, dict) else None


def _where(hit: dict) -> str:
    lines = hit.get("lines")
    return hit.get("source", "?") + (f":{lines[0]}-{lines[1]}" if lines else "")


# --------------------------------------------------------------------------- text of each answer


def search_text(query: str, payload: dict) -> str:
    hits = payload.get("hits") or []
    scope = payload.get("project")
    inferred = payload.get("inferred")
    head = f"{len(hits)} result(s) for {query!r}"
    if scope:
        head += f" in project {scope}"
    elif inferred:
        head += f" (project {inferred['project']} inferred, confidence {inferred['confidence']:.2f}, preferred)"
    if not hits:
        return head + ". Nothing in AtoCore matches."
    out = [head + ":"]
    for n, h in enumerate(hits, 1):
        title = f" — {h['title']}" if h.get("title") else ""
        out.append(f"\n[{n}] {h.get('kind')} | project {h.get('project') or '-'} | {_where(h)}{title}\n"
                   f"    store path {h.get('path')} @ commit {_short(h.get('commit'))}, score {h.get('score', 0):.3f}")
        text = " ".join(str(h.get("text", "")).split())
        out.append("    " + (text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + " [...]"))
    return "\n".join(out)


def context_text(build: dict) -> str:
    src = build.get("project_source")
    proj = build.get("project")
    about = (f"project {proj} ({src}" + (f", confidence {build.get('confidence', 0):.2f}" if src == "inferred"
                                          else "") + ")") if proj else "no project (" + "; ".join(
        build.get("reasons") or ["none given or inferred"]) + ")"
    foot = (f"\n\n(AtoCore context for {about}; {len(build.get('items') or [])} item(s), "
            f"main {_short(build.get('commit'))}")
    notes = build.get("notes") or []
    foot += (f"; notes: {'; '.join(notes)})" if notes else ")")
    ctx = build.get("context") or ""
    return (ctx.rstrip() if ctx else "Nothing relevant in AtoCore for this prompt.") + foot


def state_text(project: str, state: dict, known: list[str] | None) -> str:
    entries = state.get("entries") or []
    if not entries:
        text = f"No trusted state for project {project}."
        if known is not None and project not in known:
            text += f" It is not a registered project; registered: {', '.join(known) or 'none'}."
        return text
    out = [f"Trusted state of project {project} ({len(entries)} entries, reviewed; source file "
           f"state/{project}.yaml):"]
    for e in entries:
        out.append(f"- [{e['category']}] {e['key']}: {e['value']}  "
                   f"(source state/{project}.yaml#{e['key']}, from {e.get('source')}, updated {e.get('updated')})")
    return "\n".join(out)


def projects_text(projects: list[dict]) -> str:
    if not projects:
        return "No projects are registered in AtoCore."
    out = [f"{len(projects)} registered project(s) (store files projects/<id>.yaml):"]
    for p in projects:
        line = f"- {p['id']}"
        if p.get("name") and p["name"] != p["id"]:
            line += f" — {p['name']}"
        if p.get("description"):
            line += f": {p['description']}"
        if p.get("aliases"):
            line += f" (aliases: {', '.join(p['aliases'])})"
        out.append(line)
    return "\n".join(out)


def remember_text(res: dict) -> str:
    if not res.get("proposed"):
        return f"Nothing proposed: {res.get('reason')}."
    m = res["memory"]
    where = f"project {m['project']}" if m.get("project") else "global"
    branch = (res.get("ref") or f"review/{res['review']}").removeprefix("refs/heads/")
    return (f"Proposed candidate memory {m['id']} (type {m['type']}, {where}) for review on branch {branch}. "
            f"It is NOT active: AtoCore uses it only after a person approves it "
            f"(`atocore review approve {res['review']}`).")


# --------------------------------------------------------------------------- the server


def _guard(fn, *args: Any) -> Any:
    try:
        return fn(*args)
    except AtoCoreError as exc:  # the message says what was wrong and what is allowed
        raise ToolError(str(exc)) from None


def build_server(backend: Backend, name: str = "atocore") -> MCPServer:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    mcp = MCPServer(name, title="AtoCore", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    root.handlers[:], root.level = saved  # the SDK calls logging.basicConfig; the host process owns logging

    @mcp.tool(annotations=READ_ONLY)
    def search(query: Annotated[str, Field(description="What to look for: words or a question",
                                           min_length=1, max_length=20_000)],
               project: Project = None,
               k: Annotated[int, Field(description="How many results", ge=1, le=100)] = 10) -> CallToolResult:
        """Search AtoCore (trusted state, reviewed memories, project documents, captured turns) with
        hybrid keyword + vector retrieval. Each result gives kind, project, source (document path and
        line range, memories/<id>.md or state/<project>.yaml#<key>), commit and text. Same data as
        POST /search."""
        payload = _guard(backend.search, query, project, k)
        return _result(search_text(query, payload), payload, backend.via)

    @mcp.tool(annotations=READ_ONLY)
    def context(prompt: Annotated[str, Field(description="The question or task to build context for",
                                             min_length=1, max_length=100_000)],
                project: Project = None) -> CallToolResult:
        """The context supplement AtoCore would add to this prompt: the project's trusted state first,
        then relevant memories and cited document excerpts, within about 4000 characters. Every item
        is headed by its source and commit. Same as POST /context/build (markdown)."""
        build = _guard(backend.context, prompt, project)
        return _result(context_text(build), build, backend.via)

    @mcp.tool(annotations=READ_ONLY)
    def project_state(project: Annotated[str, Field(description="Project id (see list_projects)",
                                                    min_length=1, max_length=64)]) -> CallToolResult:
        """A project's trusted state: reviewed entries (summary, status, focus, decisions, constraints,
        facts, contacts) from state/<project>.yaml on main. Treat these as the project's current truth."""
        st = _guard(backend.state, project)
        known = None
        if not st.get("entries"):
            try:
                known = [p["id"] for p in backend.projects()]
            except Exception:
                known = None
        return _result(state_text(project, st, known), st, backend.via)

    @mcp.tool(annotations=READ_ONLY)
    def list_projects() -> CallToolResult:
        """The projects registered in AtoCore: id, name, description and aliases. Use the id as the
        `project` argument of the other tools."""
        projects = _guard(backend.projects)
        return _result(projects_text(projects), {"projects": projects}, backend.via)

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                          open_world_hint=False))
    def remember(text: Annotated[str, Field(description="The fact, decision or preference, as one "
                                                       "self-contained statement", min_length=1, max_length=8000)],
                 type: Annotated[MemoryType, Field(description=(
                     "identity: who the user is; preference: how they like things; project: a fact or decision "
                     "about a project; episodic: something that happened; knowledge: a general fact; "
                     "adaptation: how the assistant should behave from now on"))],
                 project: Project = None,
                 ctx: Context | None = None) -> CallToolResult:
        """Propose a memory for AtoCore. It is NOT stored as active: it becomes a candidate memory on a
        review branch (review/remember-<id>) that a person approves or rejects. Use it for durable facts
        the user states or confirms, not for guesses. Text already known is not proposed twice."""
        auth = None
        if ctx is not None:
            try:
                headers = ctx.headers
            except ValueError:
                headers = None
            auth = headers.get("authorization") if headers else None
        res = _guard(backend.remember, text, type, project, auth)
        return _result(remember_text(res), res, backend.via)

    return mcp
