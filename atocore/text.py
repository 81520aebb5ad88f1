"""Words of a text: the one tokeniser and stop-word list, shared by projects, retrieval and context.

Below every layer that reads text: project inference, BM25 queries and the context builder's
relevance checks all cut text into words with :data:`WORD` and drop the same function words.

- :data:`QUERY_STOP_WORDS`: function words. They carry next to no BM25 weight but have the
  longest posting lists, so BM25 queries drop them (the index keeps them).
- :data:`STOP_WORDS`: those plus the rest of English's function words and the filler of a
  request ("tell", "show", "please", "use" ...): what is left of a prompt is its *content*, the
  lexical evidence that a hit is about it.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+")

QUERY_STOP_WORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have how i if in
into is it its me my of on or our should so such than that the their them then there these they this to
us was we were what when where which who whom why will with would you your""".split())

STOP_WORDS = QUERY_STOP_WORDS | frozenset("""
about above after again against all also am any because before being below between both doing down during
each few further having he her here hers herself him himself his itself just more most myself no nor not now
off once only other ours ourselves out over own same she some theirs themselves those through too under until up
very while
yours yourself yourselves
tell show give explain describe please need want know use using used get make like one two new way thing
things done may might must shall let lets what's how's it's i'm we're
""".split())


def words(text: str) -> list[str]:
    """The lower-cased words (runs of word characters) of ``text``, in order."""
    return WORD.findall(text.lower())


MAX_TERMS = 48  # a pasted log must not turn into a regex of thousands of alternatives


def content_terms(text: str) -> set[str]:
    """Lower-cased words of >= 3 characters that are not stop words (at most the 48 longest)."""
    terms = {w for w in words(text[:20_000]) if len(w) >= 3 and w not in STOP_WORDS}
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
