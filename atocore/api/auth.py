"""The service's token rule for writes, the same for REST routes and MCP tools.

With a token configured, a write needs ``Authorization: Bearer <token>``; admin endpoints need
the service to have a token at all. Without one the service only listens on loopback
(server/run.check_bind) and local clients may write.
"""

from __future__ import annotations

import hmac

from ..errors import AtoCoreError

FIELD = "Authorization"


class Unauthorized(AtoCoreError):
    """No credentials where the service needs them (HTTP 401 with ``WWW-Authenticate: Bearer``)."""

    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}

    def to_dict(self) -> dict:
        return {**super().to_dict(), "field": FIELD}


class Forbidden(AtoCoreError):
    """Credentials that are not the service's token, or an admin call to a service without one."""

    status_code = 403

    def to_dict(self) -> dict:
        return {**super().to_dict(), "field": FIELD}


def token_matches(expected: str, given: str | None) -> bool:
    """``given`` is the service's token (compared in constant time)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def check_token(expected: str | None, authorization: str | None, admin: bool = False,
                what: str = "this write", where: str = "") -> None:
    """Raise unless ``authorization`` may write to a service whose token is ``expected``.

    ``what`` names the call in the message and ``where`` says where the header goes (the MCP
    tool says "in the MCP client's headers"), so each caller's user reads what to fix."""
    if expected is None:
        if admin:
            raise Forbidden("admin endpoints need the service to run with a token: set ATOCORE_TOKEN and restart it")
        return
    if not authorization:
        raise Unauthorized(f"{what} needs 'Authorization: Bearer <token>' (the service's ATOCORE_TOKEN){where}")
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token_matches(expected, given.strip()):
        raise Forbidden(f"{what}: the bearer token is not the service's token")
