"""Content words of a prompt: the lexical evidence that a hit is about it."""

from __future__ import annotations

import re

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your yours yourself yourselves
tell show give explain describe please need want know use using used get make like one two new way thing
things does did done should would could may might must shall let lets what's how's it's i'm we're
""".split())
_TOKEN = re.compile(r"\w+")


def content_terms(text: str) -> set[str]:
    """Lower-cased words of >= 3 characters that are not stop words."""
    return {w for w in _TOKEN.findall(text.lower()) if len(w) >= 3 and w not in STOP_WORDS}


def _words(text: str) -> frozenset[str]:
    """All words of ``text``."""
    return frozenset(_TOKEN.findall(text.lower()))


class WordMemo(dict):
    """Per-build memo of ``_words`` keyed by the text itself (hits keep the same string objects,
    whose hash Python caches, so each text is tokenised once per build)."""

    def __missing__(self, text: str) -> frozenset[str]:
        words = self[text] = _words(text)
        return words
