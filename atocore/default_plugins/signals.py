"""Built-in plugin: the ``signals`` extractor (explicit signals in the person's own words).

The rules behind ``atocore extract`` and ``capture.extract: true`` (see
:mod:`atocore.capture.extract` for what is proposed and how). Only the prompt is read, never
the assistant's reply, and only explicit signals count.
"""

from __future__ import annotations

import re

import atocore
from atocore.capture.extract import Candidate, Extractor
from atocore.records import Interaction


_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.DOTALL)
_QUOTE = re.compile(r"^\s*>.*$", re.MULTILINE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|\n{1,}")

# (signal, type-or-None (None: project if known else knowledge), confidence, pattern with group 'text')
_RULES: list[tuple[str, str | None, float, re.Pattern[str]]] = [
    ("remember", None, 0.8, re.compile(
        r"^(?:please\s+|also\s+|and\s+)?(?:remember|note|keep in mind|don'?t forget|never forget|fyi)"
        r"(?:\s+that)?\s*[:,-]?\s+(?P<text>.+)$", re.I)),
    ("decision", "project", 0.8, re.compile(
        r"^(?P<text>(?:we|i|the team)\s+(?:have\s+|'ve\s+)?(?:decided|agreed|settled on|chose|chosen)\b.+)$", re.I)),
    ("decision", "project", 0.8, re.compile(r"^(?:decision|decided)\s*[:\-]\s*(?P<text>.+)$", re.I)),
    ("decision", "project", 0.7, re.compile(r"^(?P<text>let'?s (?:go with|use|stick with|standardi[sz]e on)\b.+)$", re.I)),
    ("preference", "preference", 0.75, re.compile(
        r"^(?P<text>i\s+(?:really\s+|strongly\s+)?(?:prefer|like|love|dislike|hate|don'?t like|'d rather|would rather)\b.+)$",
        re.I)),
    ("preference", "preference", 0.75, re.compile(r"^(?P<text>my (?:preference|preferred \w+) is\b.+)$", re.I)),
    ("adaptation", "adaptation", 0.7, re.compile(
        r"^(?:from now on|going forward|in (?:the )?future)\s*,?\s*(?P<text>.+)$", re.I)),
    ("adaptation", "adaptation", 0.65, re.compile(
        r"^(?:please\s+)?(?P<text>(?:always|never|stop|don'?t ever)\s+\w+.+)$", re.I)),
    ("correction", "knowledge", 0.6, re.compile(
        r"^(?:no|nope|actually|correction|to correct you)\s*[,:\-]\s*(?P<text>.+)$", re.I)),
    ("correction", "knowledge", 0.6, re.compile(
        r"^(?:that'?s|this is|you'?re)\s+(?:wrong|incorrect|not right|mistaken)\s*[,.:;\-]\s*(?P<text>.+)$", re.I)),
    ("identity", "identity", 0.8, re.compile(r"^(?P<text>(?:my name is|i work (?:at|as|for|on)|i am the|i'm the)\b.+)$", re.I)),
]
MIN_CHARS, MAX_CHARS, MIN_WORDS = 12, 500, 4


def sentences(text: str) -> list[str]:
    text = _QUOTE.sub("", _CODE.sub(" ", text))
    return [s.strip(" \t-*•") for s in _SENTENCE.split(text) if s and s.strip()]


def rule_candidates(inter: Interaction) -> list[Candidate]:
    out: list[Candidate] = []
    for sent in sentences(inter.prompt):
        if sent.endswith("?") or "[REDACTED:" in sent or not MIN_CHARS <= len(sent) <= MAX_CHARS:
            continue
        for signal, mtype, conf, pat in _RULES:
            m = pat.match(sent)
            if not m:
                continue
            text = m.group("text").strip()
            if len(text) < MIN_CHARS or text.endswith("?") or len(text.split()) < MIN_WORDS:
                break  # "No, that's wrong." carries nothing worth keeping
            text = text[0].upper() + text[1:]
            if text[-1] not in ".!":
                text += "."
            out.append(Candidate(text=text, type=mtype or ("project" if inter.project else "knowledge"),
                                 signal=signal, confidence=conf))
            break
    return out


@atocore.hookimpl
def register_extractors(register):
    register(Extractor("signals", rule_candidates, "explicit signals in the person's own words"))
