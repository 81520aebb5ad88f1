"""Who may change the store from the browser, and proof that a form really came from our pages.

* The token lives in an ``HttpOnly``, ``SameSite=Strict`` cookie set by the login form (the page
  script cannot read it, and no other site's page can make the browser send it).
* Every form carries a CSRF token: an HMAC of a random per-browser session id (its own cookie)
  under a secret that lives only in this process. A forged form from elsewhere cannot know it.
* Every POST must also come from our own origin (``Origin``, else ``Referer``, names this host).
* A service without a token (loopback only, see ``server/run.check_bind``) accepts UI writes
  without a login, as its API does, but only when the ``Host`` is a loopback name: a DNS
  rebinding page (``Host: evil.example``) cannot write through the user's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from ..api.auth import token_matches


TOKEN_COOKIE = "atocore_ui_token"
SESSION_COOKIE = "atocore_ui_session"
COOKIE_PATH = "/ui"


def loopback_host(host_header: str) -> bool:
    """A literal loopback ``Host`` (never resolved: a rebinding name resolves to 127.0.0.1 too)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Refused(Exception):
    """A state-changing request the UI will not carry out; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Auth:
    token: str | None          # the service's token (None: writes need none, loopback only)
    secret: bytes = b""

    def __post_init__(self) -> None:
        self.secret = self.secret or os.urandom(32)

    # ------------------------------------------------------------------ session and CSRF

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(24)

    def session_of(self, request: Request) -> str | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return sid if sid and 16 <= len(sid) <= 64 else None

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self.secret, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ who is logged in

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return token_matches(self.token, given)

    def logged_in(self, request: Request) -> bool:
        """True if this browser may write (a valid token cookie, or a service without a token)."""
        if self.token is None:
            return True
        return self.token_ok(request.cookies.get(TOKEN_COOKIE))

    # ------------------------------------------------------------------ the checks on every POST

    def check_origin(self, request: Request) -> None:
        host = (request.headers.get("host") or "").lower()
        origin = request.headers.get("origin")
        where = origin if origin not in (None, "") else request.headers.get("referer")
        if where in (None, ""):
            return  # no browser omits both on a form POST; the CSRF token still has to match
        if where == "null" or urlsplit(where).netloc.lower() != host:
            raise Refused(403, f"refused: the request came from another site ({where!r}), not from these pages")

    def check_form(self, request: Request, form: dict[str, str], need_login: bool = True) -> None:
        """Origin, CSRF token, then the login (or, without a token, a loopback Host)."""
        self.check_origin(request)
        sid = self.session_of(request)
        given = form.get("csrf", "")
        if sid is None or not given or not hmac.compare_digest(given.encode(), self.csrf_for(sid).encode()):
            raise Refused(403, "refused: the form's security token is missing or wrong; reload the page and try "
                               "again")
        if not need_login:
            return
        if self.token is None:
            if not loopback_host(request.headers.get("host") or ""):
                raise Refused(403, "refused: this service has no token, so it only accepts changes addressed to "
                                   "a loopback name (127.0.0.1, localhost, ::1)")
            return
        if not self.logged_in(request):
            raise Refused(401, "log in first: changes need the service's token")
