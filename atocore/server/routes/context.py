"""The binding endpoints assistants call: health, search, context builds, captured turns.

``/context/build``, ``/search`` and ``/health`` are ``async``: their CPU work is short and a
thread-pool hop costs more than it. ``/context/build`` is usually answered before FastAPI by
the fast path (server/fastpath.py) with the same ``Api.context``; this route answers the rest.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from ...api import context_args
from ...errors import NotFound
from ..errors import JSON
from ..models import ContextRequest, SearchRequest
from ..service import Service
from .deps import api_of, service_of, writer

router = APIRouter(tags=["context"])


class _DeferredIndex:
    """A retriever view for writers: searches as usual, but ``update()`` wakes the watcher
    instead of indexing inside the request."""

    def __init__(self, service: Service):
        self._service = service

    def search(self, *args: Any, **kwargs: Any) -> Any:
        r = self._service.ready_retriever()
        return r.search(*args, **kwargs) if r is not None else []

    def update(self) -> dict:
        self._service.poke()
        return {"deferred": True}


@router.get("/health", summary="Service, store and index health")
async def health(request: Request) -> JSON:
    return JSON(service_of(request).health())


@router.post("/search", summary="Hybrid search (binding)")
async def search(req: SearchRequest, request: Request) -> JSON:
    return JSON(api_of(request).search(req.query, project=req.project, k=req.k))


@router.post("/context/build", summary="Build the context supplement for a prompt (binding)")
async def context_build(req: ContextRequest, request: Request) -> JSON:
    # the body model shapes type errors for OpenAPI clients; context_args is the one check
    return JSON(api_of(request).context(context_args(req.model_dump())))


@router.get("/debug/context", summary="The last context build, prompt redacted (token required when the service "
                                      "has one)", dependencies=[Depends(writer)])
def debug_context(request: Request) -> JSON:
    from ...context.build import load_last_build, redact_build

    service = service_of(request)
    data = service.last_build
    if data is not None:
        data = redact_build(data, service.redact_patterns())
    else:
        data = load_last_build(service.store)  # redacted when saved
    if data is None:
        raise NotFound("no context has been built yet; POST /context/build first")
    return JSON(data)


@router.get("/formats", summary="Output formats (plugins)")
async def formats() -> JSON:
    from ...context.formats import get_formats

    return JSON([{"name": f.name, "description": f.description, "media_type": f.media_type}
                 for f in get_formats().values()])


@router.post("/interactions", summary="Record a captured turn (binding)", dependencies=[Depends(writer)])
def interactions(request: Request,
                 body: dict[str, Any] = Body(..., description="source, session_id, prompt, response, "
                                                              "project?, id?, created?, meta?")) -> JSON:
    from ...capture.record import record_interaction

    service = service_of(request)
    inter, created = record_interaction(service.store, dict(body), _DeferredIndex(service))
    service.poke()
    return JSON({"id": inter.id, "created": created, "project": inter.project, "session_id": inter.session_id},
                status_code=201 if created else 200)
