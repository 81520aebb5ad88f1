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


REQUEST_TIMEOUT = 30.0  # seconds a client has to send one whole request (headers and body)
KEEP_ALIVE_TIMEOUT = 30.0  # seconds an idle keep-alive connection stays open
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s")


class CoalescingTransport:
    """A transport whose writes made in one turn of the event loop leave in one ``write``.

    uvicorn writes a response's status line and headers the moment the app sends
    ``http.response.start`` and the body on ``http.response.body``: two sends on the socket for
    every small response. Each wakes the waiting client, which reads the headers, blocks again and
    is woken again for the body (two wake-ups and two round trips through the scheduler per
    request; on a busy 2-core machine the client preempts the server between them). Handlers
    that send both without waiting in between (the context fast path, any small JSON answer)
    now leave as one segment; a streaming response still goes out as it is produced, one loop
    turn later at most. Everything else is the wrapped transport's."""

    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport, loop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def deadline_protocol(request_timeout: float = REQUEST_TIMEOUT):
    """uvicorn's httptools protocol with a deadline for receiving each request.

    uvicorn times out idle keep-alive connections, but not a request that is still arriving: a
    client that sends half its headers or half its body and then waits holds the connection
    (and the task awaiting the body) forever, and a few thousand such clients pin the server.
    Here every request must arrive whole within ``request_timeout`` seconds of its first byte
    (or of the connection opening); otherwise the client gets a 408 (if no response has
    started) and the connection is closed, which ends any handler waiting for the body.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class DeadlineProtocol(HttpToolsProtocol):
        _request_timer = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))
            self._arm_request_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm_request_timer()  # the next request on a keep-alive connection

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm_request_timer()

        def connection_lost(self, exc) -> None:
            self._disarm_request_timer()
            super().connection_lost(exc)

        def _arm_request_timer(self) -> None:
            self._disarm_request_timer()
            self._request_timer = self.loop.call_later(request_timeout, self._request_timed_out)

        def _disarm_request_timer(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_timed_out(self) -> None:
            self._request_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                body = (b'{"error":"RequestTimeout","message":"the request did not arrive whole within %d s"}'
                        % int(request_timeout))
                try:
                    self.transport.write(_408 % (len(body), body))
                except Exception:
                    pass
            self.transport.close()

    return DeadlineProtocol


def uvicorn_config(app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning",
                   request_timeout: float = REQUEST_TIMEOUT):
    import uvicorn

    kwargs = dict(host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                  timeout_keep_alive=KEEP_ALIVE_TIMEOUT, server_header=False, backlog=2048)
    kwargs["http"] = deadline_protocol(request_timeout)  # httptools (uvicorn[standard]) carries the deadline
    try:  # uvicorn[standard] installs uvloop except on Windows and PyPy
        import uvloop  # noqa: F401

        kwargs["loop"] = "uvloop"
    except ImportError:
        pass
    return uvicorn.Config(app, **kwargs)


def open_early(store) -> None:
    """Open the store's index and load its model in the background (``IndexLifecycle.open_early``);
    the service's start-up (``Service.warm``) then finds them ready or waits for them."""
    try:
        # What both sides would otherwise import at the same time (a module imported by two threads at
        # once is safe, but this keeps the overlap to the threads' own work).
        import anyio  # noqa: F401
        import numpy  # noqa: F401
        import tantivy  # noqa: F401
        import usearch.index  # noqa: F401

        from ..retrieval import open_retriever

        open_retriever(store).open_early()
    except Exception:  # noqa: BLE001 - the service opens them itself and reports what is wrong
        pass


def serve(store_path: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, token: str | None = None,
          log_level: str = "warning", on_started=None) -> None:
    """Serve until interrupted (blocking)."""
    token = token if token is not None else (os.environ.get("ATOCORE_TOKEN") or None)
    check_bind(host, token)
    from ..backup.service_lock import service_running
    from ..errors import Busy
    from ..store import open_store

    store = open_store(store_path)
    other = service_running(store)
    if other and not other.get("self"):
        raise Busy(f"another AtoCore service (pid {other.get('pid', '?')}) already serves {store_path}; stop it first")
    open_early(store)
    import uvicorn  # this and FastAPI's imports run while the index opens and the model loads

    from .app import create_app

    app = create_app(store_path, token=token, store=store)
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level))
    if on_started is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                on_started(server)

        server.startup = startup  # type: ignore[method-assign]
    server.run()
