"""MCP over streamable HTTP at ``/mcp`` in the service (docs/mcp.md).

``mount_mcp(app, service)`` adds one route, ``/mcp`` exactly (no sub-application: unknown paths
keep AtoCore's JSON 404s and ``/mcp`` answers without a redirect), and returns the async
context manager the app's lifespan must enter: the SDK's session manager needs its task group
running before the first request ("Task group is not initialized" otherwise). The transport is
stateless with JSON responses: every POST is answered on its own, nothing is kept between
requests, so any number of clients and service restarts cost nothing.

Writes (the ``remember`` tool) follow the service's token rule: with ``ATOCORE_TOKEN`` set they
need ``Authorization: Bearer <token>``; the answer is a tool error, not HTTP 401, so clients
never mistake it for an OAuth challenge. Reads need no token, like the REST reads.

The Host check (DNS-rebinding protection) is the service's own, for every endpoint alike
(atocore/server/hosts.py: loopback names, IP literals, names in ``ATOCORE_ALLOWED_HOSTS``); the
SDK's narrower copy of it (loopback names only, and ``Host: 127.0.0.1`` without a port refused) is
turned off so that /mcp answers exactly the Hosts the REST endpoints answer.
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

log = logging.getLogger("atocore.mcp")

PATH = "/mcp"


def transport_security() -> Any:
    """The SDK's own Host/Origin check, off: the service's HostCheck runs before any /mcp request."""
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


class _Endpoint:
    """The ASGI endpoint at /mcp; forwards to the session manager of the current lifespan.

    The MCP SDK (and the pydantic models it builds) takes ~0.6 s to import, which would delay
    the first ``/context/build`` after a start (and slow it down if loaded in the background:
    imports hold the GIL); so it is loaded, in a worker thread, when the first request to /mcp
    arrives, and that request waits for it."""

    def __init__(self) -> None:
        self.manager: Any = None
        self.ready: Any = None  # asyncio.Events while a lifespan runs
        self.wanted: Any = None
        self.failed = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.manager is None and self.ready is not None and not self.failed:
            import asyncio

            self.wanted.set()
            try:
                await asyncio.wait_for(self.ready.wait(), LOAD_WAIT)
            except asyncio.TimeoutError:
                pass
        if self.manager is None:
            why = "the MCP SDK could not be loaded" if self.failed else \
                "the MCP endpoint is not running (the service is starting or stopping)"
            body = json.dumps({"error": "Unavailable", "message": why}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.manager.handle_request(scope, receive, send)


LOAD_WAIT = 60.0  # seconds a request to /mcp waits for the SDK to load after a start


def mount_mcp(app: Any, service: Any) -> Callable[[], Any]:
    """Serve AtoCore's MCP tools at /mcp; return the lifespan hook (``async with hook(): ...``)."""
    import importlib.util

    from starlette.routing import Route

    if importlib.util.find_spec("mcp") is None:  # the service works without the MCP SDK
        log.warning("MCP endpoint disabled: the mcp package is not installed")
        return _nothing

    endpoint = _Endpoint()
    app.router.routes.append(Route(PATH, endpoint=endpoint, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))
    app.state.mcp = None  # the FastMCP server, once loaded

    def build() -> Any:
        from .backends import LocalBackend
        from .server import build_server

        return build_server(LocalBackend(lambda: service.api, via="service"))

    async def serve(stop: Any) -> None:
        import asyncio

        wanted = asyncio.ensure_future(endpoint.wanted.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({wanted, stopped}, return_when=asyncio.FIRST_COMPLETED)
        wanted.cancel()
        stopped.cancel()
        if stop.is_set():
            return
        try:
            server = app.state.mcp or await asyncio.to_thread(build)
        except Exception as exc:  # noqa: BLE001 - the rest of the service keeps working
            log.warning("MCP endpoint disabled: %s: %s", type(exc).__name__, exc)
            endpoint.failed = True
            endpoint.ready.set()
            return
        app.state.mcp = server
        # A fresh session manager per lifespan: the SDK allows run() once per manager.
        server.streamable_http_app(streamable_http_path=PATH, stateless_http=True, json_response=True,
                                   transport_security=transport_security())
        manager = server.session_manager
        async with manager.run():
            endpoint.manager = manager
            endpoint.ready.set()
            try:
                await stop.wait()
            finally:
                endpoint.manager = None

    @asynccontextmanager
    async def run() -> AsyncIterator[None]:
        import asyncio

        stop = asyncio.Event()
        endpoint.ready, endpoint.wanted, endpoint.failed = asyncio.Event(), asyncio.Event(), False
        task = asyncio.create_task(serve(stop))
        try:
            yield
        finally:
            stop.set()
            try:
                await task
            finally:
                endpoint.ready = None

    return run


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
