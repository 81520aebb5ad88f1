"""Review and inspect the store in a browser: server-rendered pages under ``/ui`` (docs/ui.md).

The pages call the same functions as the HTTP API and the CLI; every asset is served by AtoCore
itself (no CDN, no build step). ``mount_ui`` is the one call the app makes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def mount_ui(app: FastAPI, service: Any) -> None:
    from .auth import Auth
    from .routes import build_router

    app.include_router(build_router(service, Auth(token=service.token)))


__all__ = ["mount_ui"]
