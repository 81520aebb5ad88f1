"""Where the MCP tools get their answers (see docs/mcp.md).

Every backend returns the payloads of the query layer (atocore/api), which are the HTTP API's
(``POST /search``, ``POST /context/build``, ``GET /state/{p}``, ``GET /projects``), so the tool
text in ``atocore.mcp.server`` is formatted from one shape whatever transport asked.

* ``LocalBackend``: the query layer in this process: the store's own (the stdio server when no
  service answers, ``via="store"``) or the running service's (the ``/mcp`` endpoint,
  ``via="service"``: its retriever, its kept builds, its token for ``remember``).
* ``HttpBackend``: a running service over its REST API; ``remember`` is forwarded to the
  service's own ``/mcp`` tool, since no REST endpoint proposes a candidate memory.
* ``AutoBackend``: the HTTP service when it answers, else the store (``atocore mcp``).

This module imports no MCP code; ``HttpBackend.remember`` imports the MCP client when used.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Protocol

from ..api import Api, context_args, project_arg
from ..errors import AtoCoreError, NotFound, ValidationError
from ..ids import check_slug

log = logging.getLogger("atocore.mcp")


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
    """A tool's optional project: an empty string counts as not given."""
    return project_arg(value or None)


# --------------------------------------------------------------------------- in this process


class LocalBackend:
    """The query layer in this process; ``api()`` is called on first use (a store opens lazily)."""

    def __init__(self, api: Callable[[], Api], via: str = "store"):
        self._make_api = api
        self._api: Api | None = None
        self.via = via

    @classmethod
    def for_store(cls, store_path: str | None) -> "LocalBackend":
        def make() -> Api:
            from ..store import open_store

            return Api.for_store(open_store(store_path))

        return cls(make, via="store")

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = self._make_api()
        return self._api

    def search(self, query: str, project: str | None, k: int) -> dict:
        return self.api.search(query, project=_project(project), k=k)

    def context(self, prompt: str, project: str | None) -> dict:
        return self.api.context(context_args({"prompt": prompt, "project": _project(project)}))

    def state(self, project: str) -> dict:
        return self.api.state(project)

    def projects(self) -> list[dict]:
        return self.api.projects()

    def remember(self, text: str, type: str, project: str | None, authorization: str | None = None) -> dict:
        self.api.check_write(authorization, what="remember (a write)",
                             where=" in the MCP client's headers; reading tools work without it")
        return self.api.remember(text, type, _project(project))


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
        from .server import payload_of

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
        self.local = LocalBackend.for_store(store_path) if store_path else None
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
