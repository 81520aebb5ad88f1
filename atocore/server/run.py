"""Running the service with uvicorn, and the bind-safety rule."""

from __future__ import annotations

import ipaddress
import os
import socket

from ..errors import ValidationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token: anyone on the network could write."""
    if not is_loopback(host) and not token:
        raise ValidationError("host", f"{host!r} is not a loopback address; serving beyond this machine needs a "
                                      "write token (set ATOCORE_TOKEN)", ["127.0.0.1", "::1", "localhost"])


def uvicorn_config(app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning"):
    import uvicorn

    kwargs = dict(host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                  timeout_keep_alive=30, server_header=False)
    try:  # the fast parsers if present (they are uvicorn[standard] extras)
        import httptools  # noqa: F401

        kwargs["http"] = "httptools"
    except ImportError:
        pass
    try:
        import uvloop  # noqa: F401

        kwargs["loop"] = "uvloop"
    except ImportError:
        pass
    return uvicorn.Config(app, **kwargs)


def serve(store_path: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None,
          log_level: str = "warning", on_started=None) -> None:
    """Serve until interrupted (blocking)."""
    import uvicorn

    from .app import create_app

    token = token if token is not None else (os.environ.get("ATOCORE_TOKEN") or None)
    check_bind(host, token)
    try:
        from ..backup.service_lock import service_running
        from ..errors import Busy
        from ..store import open_store

        other = service_running(open_store(store_path))
    except ImportError:
        other = None
    if other and not other.get("self"):
        raise Busy(f"another AtoCore service (pid {other.get('pid', '?')}) already serves {store_path}; stop it first")
    app = create_app(store_path, token=token)
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level))
    if on_started is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                on_started(server)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
