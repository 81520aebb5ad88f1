"""The request body limit (pure ASGI middleware) and the replay of a body already read."""

from __future__ import annotations

import json

from .errors import error_body


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over ``max_bytes`` (declared or streamed) with 413 JSON."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None:
            if declared > self.max_bytes:
                return await self._refuse(send)
            return await self.app(scope, receive, send)
        # No length declared (chunked): read it here, within the limit, then replay it.
        # (FastAPI turns any error raised while it reads the body into a generic 400.)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, replay_messages([message], receive), send)
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break
        return await self.app(scope, replay_messages([{"type": "http.request", "body": bytes(body), "more_body": False}],
                                             receive), send)

    async def _refuse(self, send) -> None:
        body = json.dumps(error_body("TooLarge", f"the request body is larger than {self.max_bytes} bytes",
                                     "body")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def replay_messages(messages: list, receive):
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
