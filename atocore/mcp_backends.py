"""Where the MCP tools get their answers (see docs/mcp.md).

Every backend returns the same plain dicts the HTTP API returns (``POST /search``,
``POST /context/build``, ``GET /state/{p}``, ``GET /projects``), so the tool text in
``atocore.mcp_server`` is formatted from one shape whatever transport asked.

* ``StoreBackend``: opens the store directly (the stdio server when no service answers).
* ``ServiceBackend``: inside the running service (the ``/mcp`` endpoint): its retriever, its
  watched head, and ``remember_build`` so ``GET /debug/context`` shows MCP builds too.
* ``HttpBackend``: a running service over its REST API; ``remember`` is forwarded to the
  service's own ``/mcp`` tool, since no REST endpoint proposes a candidate memory.
* ``AutoBackend``: the HTTP service when it answers, else the store (``atocore mcp``).

This module imports no MCP code; ``HttpBackend.remember`` imports the MCP client when used.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from .errors import AtoCoreError, NotFound, ValidationError
from .ids import check_slug, new_ulid

log = logging.getLogger("atocore.mcp")

MCP_SOURCE = "mcp"
MCP_CONFIDENCE = 0.7  # an assistant's own wording, unlike extract.py's "remember that" from the person
REVIEW_PREFIX = "remember-"


class Unreachable(AtoCoreError):
    """The AtoCore service could not be reached (connection refused, timeout, DNS)."""

    status_code = 503


class Backend(Protocol):
    via: str

    def search(self, query: str, project: str | None, k: int) -> dict: ...
    def context(self, prompt: str, project: str | None) -> dict: ...
    def state(self, project: str) -> dict: ...
    def projects(self) -> list[dict]: ...
    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict: ...


def type_name(exc: BaseException) -> str:
    return type(exc).__name__


def _project(value: str | None) -> str | None:
    return None if value in (None, "") else check_slug(value, "project")


# --------------------------------------------------------------------------- proposing a candidate


def propose_memory(store, text: str, type: str, project: str | None = None, author: str | None = None) -> dict:
    """Propose one candidate memory on ``review/remember-<memory id>``; nothing on main changes.

    Reuses the extraction path's pieces (``atocore.capture.extract``): the same record
    validation, the same duplicate check against main and open reviews, the same proposal kind.
    """
    from .capture.extract import Known
    from .capture.redact import redact
    from .config import load_config
    from .projects.registry import projects as registered
    from .records import memory_from_dict
    from .review import propose

    project = _project(project)
    if project is not None and project not in registered(store):
        raise ValidationError("project", f"{project!r} is not a registered project",
                              sorted(registered(store)) or None)
    # An assistant may pass on what it saw (a pasted key, say): redact as capture does, since a
    # review branch is in the store's history even if the proposal is rejected.
    if isinstance(text, str):
        text = redact(text, load_config(store).redact_patterns)
    mem = memory_from_dict({"id": new_ulid(), "type": type, "text": text, "project": project,
                            "status": "candidate", "confidence": MCP_CONFIDENCE, "source": MCP_SOURCE,
                            "tags": ["mcp", "remember"]})
    if Known(store, scan_history=False).seen(mem.text):
        return {"proposed": False, "review": None, "memory": None,
                "reason": "a memory with this text (or nearly) already exists on main or waits in review"}
    where = f" for {project}" if project else ""
    excerpt = " ".join(mem.text.split())
    title = f"Candidate {mem.type} memory{where} via MCP: {excerpt}"
    title = title if len(title) <= 120 else title[:117] + "..."
    body = (f"Proposed by an assistant through the MCP `remember` tool.\n\n- [{mem.type}] {mem.text}\n\n"
            f"Nothing is active until a person approves this review.")
    p = propose(store, {mem.path: mem.dump()}, title, body=body, kind="memory", author=author,
                review_id=REVIEW_PREFIX + mem.id)
    return {"proposed": True, "review": p.id, "ref": p.ref, "memory": mem.to_dict(), "reason": None}


# --------------------------------------------------------------------------- in-process backends


class StoreBackend:
    """Answers from a store opened in this process (like the CLI does)."""

    via = "store"

    def __init__(self, store_path: str | None):
        self.store_path = store_path
        self._store = None
        self._retriever = None

    @property
    def store(self):
        if self._store is None:
            from .store import open_store

            self._store = open_store(self.store_path)
        return self._store

    def retriever(self):
        if self._retriever is None:
            from .retrieval import open_retriever

            self._retriever = open_retriever(self.store)
        return self._retriever

    def head(self) -> str | None:
        return None

    def search(self, query: str, project: str | None, k: int) -> dict:
        from .retrieval import search_payload

        return search_payload(self.retriever(), query, project=_project(project), k=k)

    def _retriever_or_none(self):
        try:
            return self.retriever()
        except Exception:  # state still answers without an index (like the service's degraded mode)
            log.exception("cannot open the index")
            return None

    def context(self, prompt: str, project: str | None) -> dict:
        from .context.build import DEFAULT_BUDGET, build_context

        b = build_context(self.store, self._retriever_or_none(), prompt, project=_project(project),
                          budget_chars=DEFAULT_BUDGET, format="markdown", head=self.head())
        return self._built(b.to_dict())

    def _built(self, data: dict) -> dict:
        from .context.build import save_last_build

        try:
            save_last_build(self.store, data)  # `atocore debug-context` shows it, as for the CLI
        except OSError:
            pass
        return data

    def state(self, project: str) -> dict:
        from .state import get_state

        st = get_state(self.store, check_slug(project, "project"))
        return {"project": st.project, "entries": [e.to_dict() for e in st.entries]}

    def projects(self) -> list[dict]:
        from .projects.registry import list_projects

        return list_projects(self.store)

    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict:
        return propose_memory(self.store, text, type, project)


class ServiceBackend(StoreBackend):
    """Inside the running service: its store, retriever and watched head; writes obey its token."""

    via = "service"

    def __init__(self, service: Any):
        super().__init__(str(service.store.path))
        self.service = service
        self._store = service.store

    def retriever(self):
        r = self.service.ready_retriever()
        if r is None:
            raise AtoCoreError("the search index is being built or cannot be opened; see GET /health")
        return r

    def _retriever_or_none(self):
        return self.service.ready_retriever()

    def head(self) -> str | None:
        return self.service.head

    def _built(self, data: dict) -> dict:
        if not self.service.index_ready:
            data.setdefault("notes", []).append(
                "the search index is being built; only trusted state is included for now")
        self.service.remember_build(data)
        return data

    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict:
        check_write_token(self.service.token, authorization)
        return propose_memory(self.store, text, type, project)


class Unauthorized(AtoCoreError):
    status_code = 401


def check_write_token(expected: str | None, authorization: str | None) -> None:
    """The service's rule for writes: with a token configured, ``Authorization: Bearer <token>``."""
    import hmac

    if expected is None:
        return  # no token: the service only listens on loopback and local clients may write
    if not authorization:
        raise Unauthorized("remember is a write: this service needs 'Authorization: Bearer <token>' (its "
                           "ATOCORE_TOKEN) in the MCP client's headers; reading tools work without it")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized("remember is a write: the bearer token is not the service's token")


# --------------------------------------------------------------------------- over HTTP


class HttpBackend:
    """A running AtoCore service, through its binding REST endpoints."""

    via = "service"

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0, connect_timeout: float = 1.0):
        import httpx

        self.url = url.rstrip("/")
        self.token = token or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=connect_timeout), trust_env=False)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unreachable(f"the AtoCore service at {self.url} is not reachable ({exc})") from None
        except httpx.HTTPError as exc:
            raise AtoCoreError(f"the AtoCore service at {self.url} failed: {type(exc).__name__}: {exc}") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            msg = data.get("message") if isinstance(data, dict) else None
            err = NotFound if r.status_code == 404 else AtoCoreError
            raise err(msg or f"the AtoCore service answered HTTP {r.status_code} to {method} {path}")
        return data

    def search(self, query: str, project: str | None, k: int) -> dict:
        return self._call("POST", "/search", json={"query": query, "project": _project(project), "k": k})

    def context(self, prompt: str, project: str | None) -> dict:
        return self._call("POST", "/context/build", json={"prompt": prompt, "project": _project(project)})

    def state(self, project: str) -> dict:
        return self._call("GET", f"/state/{check_slug(project, 'project')}")

    def projects(self) -> list[dict]:
        return self._call("GET", "/projects")

    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict:
        """Forwarded to the service's ``remember`` tool at ``<url>/mcp`` (it checks the token)."""
        import anyio

        self._call("GET", "/health")  # Unreachable here lets AutoBackend fall back to the store
        try:  # this runs in a worker thread (the SDK runs sync tools there): a loop of its own is fine
            return anyio.run(self._remember, {"text": text, "type": type, "project": _project(project)})
        except AtoCoreError:
            raise
        except Exception as exc:  # e.g. a service without /mcp, or one that went away meanwhile
            raise AtoCoreError(f"forwarding remember to {self.url}/mcp failed: {type_name(exc)}: {exc}") from None

    async def _remember(self, args: dict) -> dict:
        import httpx2
        from mcp.client.session import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30.0, trust_env=False) as http, \
                streamable_http_client(f"{self.url}/mcp", http_client=http) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("remember", args)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            raise AtoCoreError(text.removeprefix("Error executing tool remember: "))
        from .mcp_server import payload_of

        data = payload_of(result)
        if not isinstance(data, dict):
            raise AtoCoreError(f"unexpected answer from {self.url}/mcp: {text[:200]}")
        return {k: v for k, v in data.items() if k != "via"}


class AutoBackend:
    """The service at ``url`` when it answers; else the store at ``store_path`` (if given).

    Decided per call, so the server keeps working when the service starts or stops later. A
    service found unreachable is not retried for ``retry_after`` seconds (a down remote host
    would otherwise cost a connect timeout on every call)."""

    def __init__(self, url: str | None, store_path: str | None, token: str | None = None,
                 retry_after: float = 5.0):
        self.http = HttpBackend(url, token) if url else None
        self.local = StoreBackend(store_path) if store_path else None
        if self.http is None and self.local is None:
            raise ValidationError("ATOCORE_URL", "give a service URL or a store (ATOCORE_STORE or --store)")
        self.retry_after = retry_after
        self._down_until = 0.0
        self._last = threading.local()  # which side answered this thread's last call

    @property
    def via(self) -> str:
        return getattr(self._last, "via", "service" if self.http else "store")

    def _run(self, name: str, *args: Any, **kw: Any) -> Any:
        if self.http is not None and (self.local is None or time.monotonic() >= self._down_until):
            try:
                out = getattr(self.http, name)(*args, **kw)
                self._last.via = "service"
                return out
            except Unreachable:
                if self.local is None:
                    raise
                self._down_until = time.monotonic() + self.retry_after
                log.info("service unreachable; answering from the store")
        self._last.via = "store"
        return getattr(self.local, name)(*args, **kw)

    def search(self, query: str, project: str | None, k: int) -> dict:
        return self._run("search", query, project, k)

    def context(self, prompt: str, project: str | None) -> dict:
        return self._run("context", prompt, project)

    def state(self, project: str) -> dict:
        return self._run("state", project)

    def projects(self) -> list[dict]:
        return self._run("projects")

    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict:
        return self._run("remember", text, type, project)
