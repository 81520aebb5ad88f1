"""Which ``Host`` names the service answers to: the DNS-rebinding guard for every endpoint.

A web page the user opens can make its own name (``evil.example``) resolve to 127.0.0.1 after it
has loaded; the browser then treats the service as that page's own origin, so the page could read
memories and, on a service without a token, write them. The one thing such a page cannot change
is the ``Host`` header: it names the page's domain. So the service answers only requests whose
Host is

* a loopback name: ``localhost`` (and ``*.localhost``, which browsers keep on this machine);
* an IP address literal (``127.0.0.1:8100``, ``[::1]``, ``192.168.1.10:8100``): a page served from
  an address is that address, never a name the attacker controls;
* a name listed in ``ATOCORE_ALLOWED_HOSTS`` (comma-separated ``host`` or ``host:port``; ``*``
  turns the check off, e.g. behind a reverse proxy that checks Host itself). The older
  ``ATOCORE_MCP_ALLOWED_HOSTS`` is read as well.

A request without a Host header (HTTP/1.0, raw sockets) is not a browser's and passes. Names are
never resolved: a rebinding name resolves to 127.0.0.1 too. Anything else gets 421 JSON naming
the Host and what to do.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass

from .errors import error_body

ENV = "ATOCORE_ALLOWED_HOSTS"
LEGACY_ENV = "ATOCORE_MCP_ALLOWED_HOSTS"  # the name docs/mcp.md gave before the check covered every endpoint


def split_host(value: str) -> tuple[str, str | None]:
    """``host[:port]`` -> (host lower-cased without brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, port
    return value, None  # a bare name, or an IPv6 literal without brackets


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class HostRule:
    names: frozenset[str] = frozenset()  # listed names: "host" (any port) or "host:port"
    anything: bool = False

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> "HostRule":
        env = os.environ if environ is None else environ
        listed = [h.strip().lower() for var in (ENV, LEGACY_ENV) for h in env.get(var, "").split(",") if h.strip()]
        return cls(names=frozenset(listed), anything="*" in listed)

    def allows(self, host_header: str) -> bool:
        if self.anything:
            return True
        host, port = split_host(host_header)
        if not host:
            return False
        if host == "localhost" or host.endswith(".localhost") or _ip_literal(host):
            return True
        return host in self.names or (port is not None and f"{host}:{port}" in self.names)


class HostCheck:
    """Pure ASGI middleware: 421 for a Host the rule refuses (decisions cached per header value)."""

    def __init__(self, app, rule: HostRule | None = None):
        self.app = app
        self.rule = rule if rule is not None else HostRule.from_env()
        self._seen: dict[bytes, bool] = {}

    def _allowed(self, raw: bytes) -> bool:
        verdict = self._seen.get(raw)
        if verdict is None:
            verdict = self.rule.allows(raw.decode("latin-1"))
            if len(self._seen) < 256:  # a client sending endless distinct names gets no cache growth
                self._seen[raw] = verdict
        return verdict

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    if not self._allowed(value):
                        return await self._refuse(value.decode("latin-1"), send)
                    break
        return await self.app(scope, receive, send)

    async def _refuse(self, host: str, send) -> None:
        body = json.dumps(error_body(
            "MisdirectedRequest",
            f"this service does not answer to the Host {host!r} (a guard against DNS-rebinding web pages): "
            f"call it as 127.0.0.1 or localhost, by IP address, or list the name in {ENV} "
            "(comma-separated host or host:port; '*' turns the check off)",
            "Host", ["localhost", "an IP address", f"a name listed in {ENV}"])).encode()
        await send({"type": "http.response.start", "status": 421,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
