"""The HTTP service: ``create_app(store_path, token=None)`` and the serving helpers."""

from .app import create_app
from .run import check_bind, serve

__all__ = ["create_app", "check_bind", "serve"]
