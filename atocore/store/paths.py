"""What a path inside the store may look like, segment by segment (no I/O, no dependencies).

Used by the commit path (every write) and by the gate (everything that reaches main). The
rules follow what ``git fsck --strict`` and git's own checkout protections refuse, so a path
accepted here never makes a clone or a checkout fail on any platform:

* no empty, ``.`` or ``..`` segment, no absolute path, no ``\\`` (a separator on Windows);
* no control characters (a newline in a name would inject lines wherever names are printed);
* no segment that names git's own files (``.git``, ``.gitmodules``, ``.gitattributes``,
  ``.gitignore``, ``.mailmap``), compared case-insensitively and after removing what HFS+
  ignores and NTFS strips (``.GIT``, ``.git.``, ``.g\\u200cit``, ``git~1``, ``.git::$DATA``);
* segments of at most 255 bytes, paths of at most 1024 bytes and 32 levels.
"""

from __future__ import annotations

import re
import unicodedata

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_DEPTH = 32
# Code points HFS+ ignores when comparing names (git's is_hfs_dotgit list) plus the BOM.
_IGNORABLE = dict.fromkeys([0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                            0x206A, 0x206B, 0x206C, 0x206D, 0x206E, 0x206F, 0xFEFF, 0x200B])
# git's own files; NTFS 8.3 short names of them (git's is_ntfs_dot* use the same hashes)
RESERVED = (".git", ".gitmodules", ".gitattributes", ".gitignore", ".mailmap")
_SHORT_NAME = re.compile(r"^(?:git|gitmod|gi7d29|gi7eba|gi250a|maimap|mailma)~\d+\Z")


def reserved_segment(name: str) -> bool:
    """True for a name git treats as its own (``.git``, ``.gitmodules``, ...), compared the way
    case-insensitive file systems would: any case, HFS+-ignored characters dropped, NTFS
    trailing dots/spaces, alternate data streams (``.git::$INDEX_ALLOCATION``) and short names.
    ``.github`` and other names that merely start with ``.git`` are ordinary."""
    folded = unicodedata.normalize("NFC", name.translate(_IGNORABLE)).casefold().rstrip(". ")
    stem = folded.split(":", 1)[0].rstrip(". ")
    return stem in RESERVED or bool(_SHORT_NAME.match(stem))


def segment_problem(name: str) -> str | None:
    """Why one path segment is not allowed, or None."""
    if name in ("", ".", ".."):
        return "empty, '.' and '..' segments are not allowed"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "control characters (newline, tab, ...) are not allowed in names"
    if "\\" in name:
        return "'\\' is not allowed in names"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        return f"a name may be at most {MAX_SEGMENT_BYTES} bytes"
    if reserved_segment(name):
        return f"{name!r} is reserved for git's own files ({', '.join(RESERVED)}, in any case or disguise)"
    if name != name.strip():
        return "names may not start or end with white space"
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` (``a/b/c``) is not a safe store path, or None."""
    if not isinstance(path, str) or not path:
        return "the path is empty"
    if path.startswith("/"):
        return "absolute paths are not allowed"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    if len(encoded) > MAX_PATH_BYTES:
        return f"a path may be at most {MAX_PATH_BYTES} bytes"
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        return f"a path may be at most {MAX_DEPTH} folders deep"
    for part in parts:
        why = segment_problem(part)
        if why:
            return why
    return None


def printable(name: str) -> str:
    """A name as it may be printed in one line of a message (control characters escaped)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)
