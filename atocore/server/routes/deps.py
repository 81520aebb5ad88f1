"""What every route module needs: the app's query layer and service, and the token checks."""

from __future__ import annotations

from typing import Optional

from fastapi import Header, Request

from ...api import Api
from ..service import Service


def api_of(request: Request) -> Api:
    return request.app.state.api


def service_of(request: Request) -> Service:
    return request.app.state.service


def writer(request: Request, authorization: Optional[str] = Header(None)) -> None:
    """A write: with a service token, ``Authorization: Bearer <token>`` (atocore/api/auth.py)."""
    api_of(request).check_write(authorization)


def admin(request: Request, authorization: Optional[str] = Header(None)) -> None:
    """An admin call: the service must have a token, and the request must carry it."""
    api_of(request).check_admin(authorization)
