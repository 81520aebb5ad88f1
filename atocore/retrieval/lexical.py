"""How text becomes BM25 terms, on both sides (index and query).

Engineers type identifiers: ``rotation_distance``, ``foo.bar.baz``, ``--dry-run``,
``src/app/main.py``, ``std::vector``, ``CONFIG_FOO_BAR``, ``v1.2.3``. The query is never handed to
a query parser (a parser turns ``rotation_distance`` into a phrase query, which fields without
positions reject, and treats ``AND``, ``-``, ``:`` ... as syntax). Instead the query is cut into
terms here and the tantivy query is built from term queries:

* **words**: the en_stem analyzer's tokens (the index's own pipeline), so an identifier matches
  by its parts: ``rotation_distance`` -> ``rotation``, ``distanc``;
* **identifiers**: compound identifiers kept whole and lower-cased (``rotation_distance``,
  ``src/app/main.py`` and ``main.py``), matched against the ``ident`` field, where every chunk's
  compound identifiers are indexed the same way: the exact identifier outranks a chunk that only
  has its parts scattered about.

File names and paths are indexed too (field ``file``: the words of the source path; ``ident``:
the whole path and the file name), so a query naming a file finds it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..text import QUERY_STOP_WORDS, words

# a run of word characters and in-identifier separators; separators at either end are stripped
_RUN = re.compile(r"[\w][\w.:/\-]*[\w]|\w+")
_SEP = re.compile(r"[.:/\-]")
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
MAX_IDENTS = 2000  # per chunk: a generated file of identifiers must not blow up the index
MAX_QUERY_TERMS = 64  # a whole pasted prompt must not turn into a thousand-term BM25 query

# Function words (atocore.text, shared with projects and context) carry next to no BM25 weight but
# have the longest posting lists: dropping them from the *query* (the index keeps them) makes BM25
# about four times faster at 100k chunks.
STOPWORDS = QUERY_STOP_WORDS


def _is_compound(tok: str) -> bool:
    return "_" in tok or _SEP.search(tok) is not None or _CAMEL.search(tok) is not None


def identifiers(text: str, limit: int = MAX_IDENTS) -> list[str]:
    """Compound identifiers of ``text``, lower-cased, in order of first appearance; a path also
    yields its compound components (``src/app/main.py`` -> ``src/app/main.py``, ``main.py``)."""
    out: dict[str, None] = {}
    for tok in _RUN.findall(text):
        # most tokens are plain words: two C-level string checks dismiss them (indexing speed)
        if tok.isalnum() and (tok.islower() or tok.isupper() or tok.istitle() or not _CAMEL.search(tok)):
            continue
        low = tok.lower()
        out.setdefault(low)
        if "/" in low:
            for part in low.split("/"):
                part = part.strip(".:-")
                if part and _is_compound(part):
                    out.setdefault(part)
        if len(out) >= limit:
            break
    return list(out)[:limit]


def path_fields(source: str) -> tuple[str, list[str]]:
    """(words of the path, whole identifiers) of a source file's path relative to its root."""
    p = PurePosixPath(source)
    words = " ".join(p.parts[:-1] + (p.stem, p.suffix.lstrip(".")))
    idents = [source.lower(), p.name.lower()] + ([p.stem.lower()] if _is_compound(p.stem) else [])
    return words, list(dict.fromkeys(i for i in idents if i))


def query_words(query: str) -> str:
    """The query as plain lower-case words: no query-language operators, never a parse error;
    stop words are dropped unless nothing else is left; repeated words once; at most 64 words."""
    unique = list(dict.fromkeys(words(query)))
    kept = [w for w in unique if w not in STOPWORDS]
    return " ".join((kept or unique)[:MAX_QUERY_TERMS])


def query_identifiers(query: str) -> list[str]:
    return identifiers(query, MAX_QUERY_TERMS)


_CODE = re.compile(r"[_.:/]|[a-z0-9][A-Z]")


def code_identifiers(query: str) -> list[str]:
    """The query's identifiers that only code has: with ``_ . : /`` or an inner capital
    (``time_pulse_us``, ``machine.Pin``, ``useEffect``); hyphenated words (``omega-3``,
    ``low-fat``, ``dry-run``) are also prose and are left out."""
    out = []
    for t in _RUN.findall(query):
        t = t.strip(".:/-")
        if len(t) >= 4 and _CODE.search(t) and any(c.isalpha() for c in t):  # not 3.5, e.g
            out.append(t)
    return out

