"""Path globs for source roots: ``**`` spans folders, ``*``/``?`` stay within one name.

A glob without ``/`` matches the file name at any depth (as in ``.gitignore``), so
``*.tmp`` excludes every ``.tmp`` file and ``**/*.md`` includes every markdown file.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(glob: str) -> re.Pattern[str]:
    g = glob.strip().lstrip("./") if glob.startswith("./") else glob.strip()
    if "/" not in g:
        g = "**/" + g
    out, i = [], 0
    while i < len(g):
        if g.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif g.startswith("**", i):
            out.append(".*")
            i += 2
        elif g[i] == "*":
            out.append("[^/]*")
            i += 1
        elif g[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(g[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, globs: list[str] | tuple[str, ...]) -> bool:
    return any(compile_glob(g).match(path) for g in globs)
