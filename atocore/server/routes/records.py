"""Projects, memories, trusted state and reviews."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Body, Depends, Query, Request

from ...api import project_arg
from ..errors import JSON
from ..models import ApproveRequest, MemoryRequest, ProjectRequest, RejectRequest
from .deps import api_of, service_of, writer

router = APIRouter(tags=["records"])


# --------------------------------------------------------------------------- projects

@router.get("/projects", summary="Registered projects")
def projects_list(request: Request,
                  pending: bool = Query(False, description="Include registrations waiting for review")) -> JSON:
    return JSON(api_of(request).projects(pending=pending))


@router.get("/projects/{project_id}", summary="One registration")
def projects_show(project_id: str, request: Request) -> JSON:
    return JSON(api_of(request).project(project_id))


@router.post("/projects", summary="Propose (or approve) a registration", dependencies=[Depends(writer)])
def projects_register(req: ProjectRequest, request: Request) -> JSON:
    from ...projects.registry import register_project

    service = service_of(request)
    p = register_project(service.store, req.id, [s.model_dump() for s in req.sources], name=req.name,
                         aliases=req.aliases, description=req.description, approve=req.approve)
    service.poke()
    return JSON(p.to_dict(), status_code=201)


# --------------------------------------------------------------------------- memories and state

@router.get("/memories", summary="Memories")
def memories_list(request: Request, project: Optional[str] = Query(None, max_length=64),
                  status: Optional[str] = Query(None, max_length=32),
                  type: Optional[str] = Query(None, max_length=32),
                  limit: int = Query(200, ge=1, le=10_000)) -> JSON:
    from ...memories import list_memories

    mems = list_memories(service_of(request).store, project=project_arg(project), status=status, type=type)
    return JSON([m.to_dict() for m in mems[-limit:]])


@router.get("/memories/{memory_id}", summary="One memory")
def memories_show(memory_id: str, request: Request) -> JSON:
    from ...memories import get_memory

    return JSON(get_memory(service_of(request).store, memory_id).to_dict())


@router.post("/memories", summary="Add an active memory", dependencies=[Depends(writer)])
def memories_add(req: MemoryRequest, request: Request) -> JSON:
    mem = api_of(request).add_memory(req.text, req.type, project=req.project, confidence=req.confidence,
                                     source=req.source, tags=req.tags)
    service_of(request).poke()
    return JSON(mem, status_code=201)


@router.get("/state/{project}", summary="A project's trusted state")
def state_show(project: str, request: Request) -> JSON:
    return JSON(api_of(request).state(project))


# --------------------------------------------------------------------------- reviews

@router.get("/reviews", summary="Open proposals")
def reviews_list(request: Request) -> JSON:
    from ...review import list_reviews

    return JSON([r.to_dict() for r in list_reviews(service_of(request).store)])


@router.post("/reviews/{review_id:path}/approve", summary="Approve (merge) a proposal",
             dependencies=[Depends(writer)])
def reviews_approve(review_id: str, request: Request, req: ApproveRequest = Body(ApproveRequest())) -> JSON:
    from ...review import approve_review

    service = service_of(request)
    sha = approve_review(service.store, review_id, req.reviewer, expect_head=req.head)
    service.poke()
    return JSON({"id": review_id, "status": "approved", "main": sha})


@router.post("/reviews/{review_id:path}/reject", summary="Reject a proposal", dependencies=[Depends(writer)])
def reviews_reject(review_id: str, req: RejectRequest, request: Request) -> JSON:
    from ...review import reject_review

    service = service_of(request)
    sha = reject_review(service.store, review_id, req.reason, req.reviewer)
    service.poke()
    return JSON({"id": review_id, "status": "rejected", "main": sha})


@router.get("/reviews/{review_id:path}", summary="One proposal with its changed files")
def reviews_show(review_id: str, request: Request) -> JSON:
    from ...review import get_review

    return JSON(get_review(service_of(request).store, review_id).to_dict(with_files=True))
