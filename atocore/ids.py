"""Identifiers: generated ULIDs for records, validated slugs for names people choose.

Both are safe as a single path component: no separators, no dots at the start, no ``..``.
"""

from __future__ import annotations

import os
import re
import threading
import time

from .errors import ValidationError

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}\Z")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")

_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return "".join(reversed(chars))


def new_ulid() -> str:
    """A 26-character, time-sortable id; monotonic within one process."""
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand, 16)


def check_slug(value: object, field: str = "id") -> str:
    """A lower-case name safe to use as a file or branch name component."""
    if not isinstance(value, str) or not SLUG_RE.match(value) or ".." in value:
        raise ValidationError(
            field,
            f"{value!r} is not a valid name; use 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return value


def check_record_id(value: object, field: str = "id") -> str:
    """A generated ULID or a slug; never anything that could escape its folder."""
    if isinstance(value, str) and ULID_RE.match(value):
        return value
    return check_slug(value, field)


CAPTURE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}\Z")


def check_capture_id(value: object, field: str = "id") -> str:
    """A turn or session id from a capture client (a UUID, ``cc-<uuid>``, ``h-<hex>`` ...).

    Whatever is accepted here is safe wherever the id goes: a file name, a git ref component
    (``review/extract-<id>``), a commit message line. So: 1-200 characters of letters, digits
    and ``. _ : @ + = -``, starting with a letter or digit, without ``..``, not ending in ``.``
    or ``.lock`` (git refuses such ref names).
    """
    if (not isinstance(value, str) or not CAPTURE_ID_RE.match(value) or ".." in value
            or value.endswith((".", ".lock")) or "@{" in value):
        raise ValidationError(
            field,
            f"{value!r} is not a valid id; use 1-200 characters of letters, digits, '.', '_', ':', '@', '+', '=' "
            "or '-', starting with a letter or digit, without '..' and not ending in '.' or '.lock'",
        )
    return value
