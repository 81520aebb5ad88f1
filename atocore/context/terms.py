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


MAX_TERMS = 48  # a pasted log must not turn into a regex of thousands of alternatives


def content_terms(text: str) -> set[str]:
    """Lower-cased words of >= 3 characters that are not stop words (at most the 48 longest)."""
    terms = {w for w in _TOKEN.findall(text[:20_000].lower()) if len(w) >= 3 and w not in STOP_WORDS}
    if len(terms) > MAX_TERMS:
        terms = set(sorted(terms, key=lambda w: (-len(w), w))[:MAX_TERMS])
    return terms


def term_pattern(terms: set[str] | frozenset[str]) -> re.Pattern[str]:
    """One alternation of ``terms`` as whole words: scanning a hit with it is much cheaper than
    tokenising the hit (``re`` caches the compiled pattern for repeated prompts)."""
    alts = "|".join(map(re.escape, sorted(terms, key=lambda w: (-len(w), w))))
    return re.compile(r"(?<!\w)(?:" + alts + r")(?!\w)")


def has_word(text: str, word: str) -> bool:
    """``word`` (a run of word characters) occurs in ``text`` as a whole word: what ``term_pattern``
    matches, found with ``str.find`` and a boundary check, about twice as fast as the regex scan for
    the few words of a prompt (a word character is ``isalnum()`` or ``_``, as ``re``'s ``\\w``)."""
    i = text.find(word)
    end = len(text)
    n = len(word)
    while i >= 0:
        before = text[i - 1] if i else " "
        after = text[i + n] if i + n < end else " "
        if not (before.isalnum() or before == "_" or after.isalnum() or after == "_"):
            return True
        i = text.find(word, i + 1)
    return False


def count_shared(texts: tuple[str, ...], terms: set[str] | frozenset[str], need: int) -> int:
    """How many of ``terms`` occur as whole words in the lower-cased ``texts`` (counting stops at ``need``)."""
    n = 0
    for t in terms:
        if any(has_word(x, t) for x in texts):
            n += 1
            if n >= need:
                break
    return n


def shares_terms(pattern: re.Pattern[str], text: str, need: int = 1) -> bool:
    if need <= 1:
        return pattern.search(text.lower()) is not None
    return len(set(pattern.findall(text.lower()))) >= need


class WordMemo(dict):
    """Per-build memo of a text's word set for near-duplicate checks (whitespace split: near
    copies share their punctuation too, and ``str.split`` is several times cheaper than a regex)."""

    def __missing__(self, text: str) -> frozenset[str]:
        words = self[text] = frozenset(text.lower().split())
        return words
