"""The HTTP service (FastAPI). Binding endpoints are in ../shared/DESIGN.md; see docs/service.md.

Hot paths (``/context/build``, ``/search``, ``/health``) are ``async`` handlers that do their
short CPU work inline: a thread-pool hop costs more than the work. Everything that writes or may
take long runs in the thread pool (plain ``def``), so a refresh never stalls context requests.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any, Optional

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import NotFound, ValidationError
from ..ids import check_slug
from . import errors as err
from .errors import JSON
from .models import (ApproveRequest, BackupRequest, ContextRequest, MemoryRequest, ProjectRequest, RefreshRequest,
                     RejectRequest, RestoreRequest, SearchRequest)
from .service import Service

DEFAULT_MAX_BODY = 4_000_000  # a captured turn may hold 2 x 200k characters, JSON-escaped

TAGS = [
    {"name": "context", "description": "What assistants call on every prompt (binding)."},
    {"name": "records", "description": "Projects, memories, trusted state and reviews."},
    {"name": "admin", "description": "Refresh, backup and restore (token required)."},
]


def _project(value: Optional[str], field: str = "project") -> Optional[str]:
    return None if value is None else check_slug(value, field)


def create_app(store_path: str, token: str | None = None, watch_interval: float = 0.2,
               max_body: int = DEFAULT_MAX_BODY, start_watcher: bool = True, hold_lock: bool = True) -> FastAPI:
    """The AtoCore service for the store at ``store_path``; writes need ``token`` if one is set."""
    from contextlib import asynccontextmanager

    service = Service(str(store_path), token=token, watch_interval=watch_interval, hold_lock=hold_lock)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_watcher:
            service.start()
        try:
            async with app.state.mcp_run():  # the /mcp session manager (atocore/server/mcp.py)
                yield
        finally:
            service.stop()

    app = FastAPI(title="AtoCore", version=__version__, lifespan=lifespan, openapi_tags=TAGS,
                  description="Trusted project context and machine memory for LLM assistants. "
                              "Writes need `Authorization: Bearer $ATOCORE_TOKEN` when the service has a token.",
                  default_response_class=JSON)
    app.state.service = service
    err.install(app)

    # ------------------------------------------------------------------ auth

    def _check(authorization: Optional[str], admin: bool) -> None:
        expected = service.token
        if expected is None:
            if admin:
                raise HTTPException(403, detail=err.error_body(
                    "Forbidden", "admin endpoints need the service to run with a token: set ATOCORE_TOKEN "
                                 "and restart it", "Authorization"))
            return
        if not authorization:
            raise HTTPException(401, detail=err.error_body(
                "Unauthorized", "this write needs 'Authorization: Bearer <token>' (the service's ATOCORE_TOKEN)",
                "Authorization"), headers={"WWW-Authenticate": "Bearer"})
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise HTTPException(403, detail=err.error_body("Forbidden", "the bearer token is not the service's token",
                                                           "Authorization"))

    def writer(authorization: Optional[str] = Header(None)) -> None:
        _check(authorization, admin=False)

    def admin(authorization: Optional[str] = Header(None)) -> None:
        _check(authorization, admin=True)

    # ------------------------------------------------------------------ binding endpoints

    @app.get("/health", tags=["context"], summary="Service, store and index health")
    async def health() -> JSON:
        return JSON(service.health())

    @app.post("/search", tags=["context"], summary="Hybrid search (binding)")
    async def search(req: SearchRequest) -> JSON:
        from ..retrieval import search_payload

        project = _project(req.project)
        retriever = service.ready_retriever()
        if retriever is None:
            return JSON(err.error_body("IndexUnavailable", "the search index is being built or cannot be opened; "
                                                           "see GET /health"), status_code=503)
        return JSON(search_payload(retriever, req.query, project=project, k=req.k))

    def build(body: dict) -> dict:
        from ..context.build import DEFAULT_BUDGET, build_context

        project = _project(body.get("project"))
        b = build_context(service.store, service.ready_retriever(), body["prompt"], project=project,
                          head=service.head,
                          budget_chars=body.get("budget_chars", DEFAULT_BUDGET), cwd=body.get("cwd"),
                          format=body.get("format") or "markdown")
        if not service.index_ready:
            b.notes.append("the search index is being built; only trusted state is included for now")
        data = b.to_dict()
        service.remember_build(data)
        return data

    @app.post("/context/build", tags=["context"], summary="Build the context supplement for a prompt (binding)")
    async def context_build(req: ContextRequest) -> JSON:
        return JSON(build(req.model_dump()))

    @app.get("/debug/context", tags=["context"], summary="The last context build, prompt redacted (token required "
                                                          "when the service has one)", dependencies=[Depends(writer)])
    def debug_context() -> JSON:
        from ..context.build import load_last_build, redact_build

        data = service.last_build
        if data is not None:
            data = redact_build(data, service.redact_patterns())
        else:
            data = load_last_build(service.store)  # redacted when saved
        if data is None:
            raise NotFound("no context has been built yet; POST /context/build first")
        return JSON(data)

    @app.get("/formats", tags=["context"], summary="Output formats (plugins)")
    async def formats() -> JSON:
        from ..context.formats import get_formats

        return JSON([{"name": f.name, "description": f.description, "media_type": f.media_type}
                     for f in get_formats().values()])

    @app.post("/interactions", tags=["context"], summary="Record a captured turn (binding)",
              dependencies=[Depends(writer)])
    def interactions(body: dict[str, Any] = Body(..., description="source, session_id, prompt, response, "
                                                                 "project?, id?, created?, meta?")) -> JSON:
        from ..capture.record import record_interaction

        # The retriever is only searched (project inference); the watcher indexes the new commit.
        inter, created = record_interaction(service.store, dict(body), service.ready_retriever())
        service.poke()
        return JSON({"id": inter.id, "created": created, "project": inter.project, "session_id": inter.session_id},
                    status_code=201 if created else 200)

    # ------------------------------------------------------------------ projects

    @app.get("/projects", tags=["records"], summary="Registered projects")
    def projects_list(pending: bool = Query(False, description="Include registrations waiting for review")) -> JSON:
        from ..projects.registry import list_projects

        return JSON(list_projects(service.store, include_pending=pending))

    @app.get("/projects/{project_id}", tags=["records"], summary="One registration")
    def projects_show(project_id: str) -> JSON:
        from ..projects.registry import get_project

        return JSON(get_project(service.store, check_slug(project_id, "project_id")).to_dict())

    @app.post("/projects", tags=["records"], summary="Propose (or approve) a registration",
              dependencies=[Depends(writer)])
    def projects_register(req: ProjectRequest) -> JSON:
        from ..projects.registry import register_project

        p = register_project(service.store, req.id, [s.model_dump() for s in req.sources], name=req.name,
                             aliases=req.aliases, description=req.description, approve=req.approve)
        service.poke()
        return JSON(p.to_dict(), status_code=201)

    @app.post("/refresh", tags=["admin"], summary="Stage sources of one or every project and re-index",
              dependencies=[Depends(writer)])
    def refresh(req: RefreshRequest = Body(RefreshRequest())) -> JSON:
        from ..projects.refresh import refresh as do_refresh

        reports = do_refresh(service.store, _project(req.project), wait=req.wait)
        index = service.follow_main()  # the watcher brings the index to the new main; wait for it
        for r in reports:
            r.index = index
        return JSON([r.to_dict() for r in reports])

    # ------------------------------------------------------------------ memories and state

    @app.get("/memories", tags=["records"], summary="Memories")
    def memories_list(project: Optional[str] = Query(None, max_length=64),
                      status: Optional[str] = Query(None, max_length=32),
                      type: Optional[str] = Query(None, max_length=32),
                      limit: int = Query(200, ge=1, le=10_000)) -> JSON:
        from ..memories import list_memories

        mems = list_memories(service.store, project=_project(project), status=status, type=type)
        return JSON([m.to_dict() for m in mems[-limit:]])

    @app.get("/memories/{memory_id}", tags=["records"], summary="One memory")
    def memories_show(memory_id: str) -> JSON:
        from ..memories import get_memory

        return JSON(get_memory(service.store, memory_id).to_dict())

    @app.post("/memories", tags=["records"], summary="Add an active memory", dependencies=[Depends(writer)])
    def memories_add(req: MemoryRequest) -> JSON:
        from ..memories import add_memory

        mem = add_memory(service.store, req.text, req.type, project=_project(req.project),
                         confidence=req.confidence, source=req.source, tags=req.tags)
        service.poke()
        return JSON(mem.to_dict(), status_code=201)

    @app.get("/state/{project}", tags=["records"], summary="A project's trusted state")
    def state_show(project: str) -> JSON:
        from ..state import get_state

        st = get_state(service.store, check_slug(project, "project"))
        return JSON({"project": st.project, "entries": [e.to_dict() for e in st.entries]})

    # ------------------------------------------------------------------ reviews

    @app.get("/reviews", tags=["records"], summary="Open proposals")
    def reviews_list() -> JSON:
        from ..review import list_reviews

        return JSON([r.to_dict() for r in list_reviews(service.store)])

    @app.post("/reviews/{review_id:path}/approve", tags=["records"], summary="Approve (merge) a proposal",
              dependencies=[Depends(writer)])
    def reviews_approve(review_id: str, req: ApproveRequest = Body(ApproveRequest())) -> JSON:
        from ..review import approve_review

        sha = approve_review(service.store, review_id, req.reviewer, expect_head=req.head)
        service.poke()
        return JSON({"id": review_id, "status": "approved", "main": sha})

    @app.post("/reviews/{review_id:path}/reject", tags=["records"], summary="Reject a proposal",
              dependencies=[Depends(writer)])
    def reviews_reject(review_id: str, req: RejectRequest) -> JSON:
        from ..review import reject_review

        sha = reject_review(service.store, review_id, req.reason, req.reviewer)
        service.poke()
        return JSON({"id": review_id, "status": "rejected", "main": sha})

    @app.get("/reviews/{review_id:path}", tags=["records"], summary="One proposal with its changed files")
    def reviews_show(review_id: str) -> JSON:
        from ..review import get_review

        return JSON(get_review(service.store, review_id).to_dict(with_files=True))

    # ------------------------------------------------------------------ admin

    @app.post("/admin/backup", tags=["admin"], summary="Push to backup remote(s) and verify",
              dependencies=[Depends(admin)])
    def admin_backup(req: BackupRequest = Body(BackupRequest())) -> JSON:
        from ..backup import push

        # A failed push is reported in the body ("ok": false, per remote errors), not as a 5xx.
        return JSON(push(service.store, req.remote))

    @app.get("/admin/backup", tags=["admin"], summary="Backup status per remote", dependencies=[Depends(admin)])
    def admin_backup_status() -> JSON:
        from ..backup import status

        return JSON(status(service.store))

    @app.post("/admin/restore", tags=["admin"], summary="Move main back to the content of a revision",
              dependencies=[Depends(admin)])
    def admin_restore(req: RestoreRequest) -> JSON:
        from ..backup import restore

        report = restore(service.store, req.rev, dry_run=req.dry_run)
        service.poke()  # the watcher re-indexes in the background; requests keep being served
        return JSON(report)

    from .mcp import mount_mcp  # MCP tools over streamable HTTP at /mcp (docs/mcp.md)

    app.state.mcp_run = mount_mcp(app, service)

    from ..ui import mount_ui  # the review and inspection pages at /ui (docs/ui.md)

    mount_ui(app, service)

    # Outermost first on the wire: the body limit, then the lean context path, then FastAPI.
    from .fastpath import ContextFastPath

    app.add_middleware(ContextFastPath, handler=build)
    app.add_middleware(err.BodyLimit, max_bytes=max_body)
    return app
