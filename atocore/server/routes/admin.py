"""Refresh, backup and restore. Refresh is a write; backup and restore need the service's token."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request

from ...api import project_arg
from ..errors import JSON
from ..models import BackupRequest, RefreshRequest, RestoreRequest
from .deps import admin, service_of, writer

router = APIRouter(tags=["admin"])


@router.post("/refresh", summary="Stage sources of one or every project and re-index", dependencies=[Depends(writer)])
def refresh(request: Request, req: RefreshRequest = Body(RefreshRequest())) -> JSON:
    from ...projects.refresh import refresh as do_refresh

    service = service_of(request)
    retriever = service.retriever_or_none()
    reports = do_refresh(service.store, project_arg(req.project), retriever=retriever, wait=req.wait,
                         update_index=retriever is not None)
    service.poke()
    return JSON([r.to_dict() for r in reports])


@router.post("/admin/backup", summary="Push to backup remote(s) and verify", dependencies=[Depends(admin)])
def admin_backup(request: Request, req: BackupRequest = Body(BackupRequest())) -> JSON:
    from ...backup import push

    # A failed push is reported in the body ("ok": false, per remote errors), not as a 5xx.
    return JSON(push(service_of(request).store, req.remote))


@router.get("/admin/backup", summary="Backup status per remote", dependencies=[Depends(admin)])
def admin_backup_status(request: Request) -> JSON:
    from ...backup import status

    return JSON(status(service_of(request).store))


@router.post("/admin/restore", summary="Move main back to the content of a revision", dependencies=[Depends(admin)])
def admin_restore(req: RestoreRequest, request: Request) -> JSON:
    from ...backup import restore

    service = service_of(request)
    report = restore(service.store, req.rev, dry_run=req.dry_run, reindex_after=False)
    service.poke()  # the watcher re-indexes in the background; requests keep being served
    return JSON(report)
