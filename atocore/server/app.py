"""The HTTP service (FastAPI). Binding endpoints are in ../shared/DESIGN.md; see docs/service.md.

``create_app`` wires the parts: the ``Service`` (store, retriever, watcher), its query layer
(``service.api``, atocore/api), the route modules (atocore/server/routes), the MCP endpoint, the
review pages, and the three outer middlewares. Hot paths (``/context/build``, ``/search``,
``/health``) are ``async`` handlers that do their short CPU work inline: a thread-pool hop costs
more than the work. Everything that writes or may take long runs in the thread pool (plain
``def``), so a refresh never stalls context requests.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from . import errors as err
from .bodylimit import BodyLimit
from .errors import JSON
from .fastpath import ContextFastPath
from .hosts import HostCheck
from .routes import ROUTERS
from .service import Service

DEFAULT_MAX_BODY = 4_000_000  # a captured turn may hold 2 x 200k characters, JSON-escaped

TAGS = [
    {"name": "context", "description": "What assistants call on every prompt (binding)."},
    {"name": "records", "description": "Projects, memories, trusted state and reviews."},
    {"name": "admin", "description": "Refresh, backup and restore (token required)."},
]


def create_app(store_path: str, token: str | None = None, watch_interval: float = 0.2,
               max_body: int = DEFAULT_MAX_BODY, start_watcher: bool = True, hold_lock: bool = True,
               store=None) -> FastAPI:
    """The AtoCore service for the store at ``store_path`` (or the already opened ``store``);
    writes need ``token`` if one is set."""
    service = Service(str(store_path), token=token, watch_interval=watch_interval, hold_lock=hold_lock, store=store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_watcher:
            service.start()
        try:
            async with app.state.mcp_run():  # the /mcp session manager (atocore/mcp/http.py)
                yield
        finally:
            service.stop()

    app = FastAPI(title="AtoCore", version=__version__, lifespan=lifespan, openapi_tags=TAGS,
                  description="Trusted project context and machine memory for LLM assistants. "
                              "Writes need `Authorization: Bearer $ATOCORE_TOKEN` when the service has a token.",
                  default_response_class=JSON)
    app.state.service = service
    app.state.api = service.api
    err.install(app)
    for router in ROUTERS:
        app.include_router(router)

    from ..mcp.http import mount_mcp  # MCP tools over streamable HTTP at /mcp (docs/mcp.md)

    app.state.mcp_run = mount_mcp(app, service)

    from ..ui import mount_ui  # the review and inspection pages at /ui (docs/ui.md)

    mount_ui(app, service)

    # Outermost first on the wire: the Host check, the body limit, the lean context path, FastAPI.
    app.add_middleware(ContextFastPath, api=service.api)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.add_middleware(HostCheck)
    return app
