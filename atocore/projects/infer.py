"""Which registered project is a prompt about?

Signals, strongest first (each adds evidence to a project; reasons say which fired):

* ``cwd`` inside one of the project's source folders           -> 0.9
* the project id or name as a whole word in the prompt          -> 0.8
* one of its aliases as a whole word                            -> 0.7
* retrieval evidence: the share of the top hits' score that belongs to the project,
  counted only when that share is a clear majority (>= 0.6)     -> 0.7 x share

Scores of one project combine as independent evidence (1 - prod(1 - s)). The best project is
returned when its confidence is >= 0.5 *and* it leads the runner-up by >= 0.2; otherwise the
answer is ``None`` (unclear), so a prompt that names two projects equally is not guessed.
Matching is cached per main commit: one regex pass over the prompt per call.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..store import Store
from ..store.head import main_head
from .registry import projects

CWD_SCORE = 0.9
NAME_SCORE = 0.8
ALIAS_SCORE = 0.7
RETRIEVAL_MAX = 0.7
RETRIEVAL_SHARE = 0.6
MIN_CONFIDENCE = 0.5
MIN_MARGIN = 0.2


@dataclass
class _Matcher:
    head: str | None
    pattern: re.Pattern[str] | None
    terms: dict[str, list[tuple[str, str, float]]]   # lower-cased term -> [(project, kind, score)]
    roots: list[tuple[str, str]]                      # (resolved folder, project)
    ids: set[str]


_lock = threading.Lock()
_matchers: dict[str, _Matcher] = {}


def _term_regex(term: str) -> str:
    # Whole words; inner spaces match any run of whitespace, '-'/'_' are interchangeable with space.
    parts = [re.escape(p) for p in re.split(r"[\s_-]+", term.strip()) if p]
    return r"[\s_-]+".join(parts)


def _matcher(store: Store) -> _Matcher:
    head = main_head(store)
    key = str(store.path)
    with _lock:
        m = _matchers.get(key)
        if m is not None and m.head == head:
            return m
    regs = projects(store)
    terms: dict[str, list[tuple[str, str, float]]] = {}
    roots: list[tuple[str, str]] = []
    for p in regs.values():
        for term, kind, score in ([(p.id, "id", NAME_SCORE), (p.name, "name", NAME_SCORE)]
                                  + [(a, "alias", ALIAS_SCORE) for a in p.aliases]):
            norm = " ".join(re.split(r"[\s_-]+", term.strip().lower()))
            if len(norm) < 2:
                continue
            terms.setdefault(norm, [])
            if not any(t[0] == p.id for t in terms[norm]):
                terms[norm].append((p.id, kind, score))
        for r in p.sources:
            try:
                roots.append((str(Path(r.path).expanduser().resolve()), p.id))
            except OSError:
                continue
    pattern = None
    if terms:
        alts = sorted(terms, key=len, reverse=True)  # longest first: "p04 mirror" before "p04"
        pattern = re.compile(r"(?<![\w])(" + "|".join(_term_regex(t) for t in alts) + r")(?![\w])", re.IGNORECASE)
    m = _Matcher(head, pattern, terms, roots, set(regs))
    with _lock:
        _matchers[key] = m
    return m


def _combine(scores: Iterable[float]) -> float:
    rest = 1.0
    for s in scores:
        rest *= 1.0 - s
    return 1.0 - rest


def retrieval_evidence(hits: Iterable[Any], known: set[str], prompt: str = "") -> tuple[str | None, float, str]:
    """The project that clearly dominates the hits (by score share), if any.

    Only hits sharing a content word with the prompt count: fused scores are relative to the
    best hit, so vector-only neighbours of a meaningless prompt would otherwise "vote".
    """
    from ..context.terms import content_terms, shares_terms, term_pattern

    terms = content_terms(prompt) if prompt else None
    pattern = term_pattern(terms) if terms else None
    mass: dict[str, float] = {}
    total = 0.0
    for h in hits:
        if terms is not None and (pattern is None or not (shares_terms(pattern, h.text or "")
                                                          or shares_terms(pattern, getattr(h, "title", "") or ""))):
            continue
        s = max(float(getattr(h, "score", 0.0) or 0.0), 0.0)
        total += s
        if h.project in known:
            mass[h.project] = mass.get(h.project, 0.0) + s
    if not mass or total <= 0:
        return None, 0.0, ""
    best = max(mass, key=mass.__getitem__)
    share = mass[best] / total
    if share < RETRIEVAL_SHARE:
        return None, 0.0, ""
    return best, RETRIEVAL_MAX * share, f"retrieval: {share:.0%} of the top hits' score is from {best}"


@dataclass
class Evidence:
    """What points at which project, gathered signal by signal; ``decide`` says the answer so far.

    A caller that searches only when names leave the project unclear (the context build) adds
    the hits to the same evidence instead of matching the prompt a second time."""

    ids: set[str]
    scores: dict[str, list[float]]
    reasons: list[str]

    def add_hits(self, hits: list | None, prompt: str) -> None:
        if hits and self.ids:
            pid, score, why = retrieval_evidence(hits, self.ids, prompt)
            if pid:
                self.scores.setdefault(pid, []).append(score)
                self.reasons.append(why)

    def decide(self) -> tuple[str | None, float, list[str]]:
        """``(project id or None, confidence 0..1, reasons)``."""
        if not self.ids:
            return None, 0.0, ["no project is registered"]
        if not self.scores:
            return None, 0.0, list(self.reasons) or ["no project id, name, alias or folder matched"]
        ranked = sorted(((_combine(s), pid) for pid, s in self.scores.items()), reverse=True)
        conf, best = ranked[0]
        runner = ranked[1][0] if len(ranked) > 1 else 0.0
        if conf < MIN_CONFIDENCE or conf - runner < MIN_MARGIN:
            others = ", ".join(f"{pid} {c:.2f}" for c, pid in ranked[:3])
            return None, conf, list(self.reasons) + [f"unclear: {others}"]
        return best, round(conf, 3), list(self.reasons)


def name_evidence(store: Store, prompt: str, cwd: str | os.PathLike[str] | None = None) -> Evidence:
    """The evidence of the working directory and of project ids, names and aliases in ``prompt``."""
    m = _matcher(store)
    evidence = Evidence(m.ids, {}, [])
    if not m.ids:
        return evidence
    scores, reasons = evidence.scores, evidence.reasons
    if cwd:
        try:
            here = str(Path(cwd).expanduser().resolve())
        except (OSError, ValueError):
            here = ""
        best_root = max((r for r in m.roots if here == r[0] or here.startswith(r[0].rstrip("/") + "/")),
                        key=lambda r: len(r[0]), default=None)
        if best_root:
            scores.setdefault(best_root[1], []).append(CWD_SCORE)
            reasons.append(f"cwd is inside a source folder of {best_root[1]}")
    if m.pattern is not None and prompt:
        seen: set[tuple[str, str]] = set()
        for match in m.pattern.finditer(prompt[:20_000]):
            norm = " ".join(re.split(r"[\s_-]+", match.group(1).lower()))
            for pid, kind, score in m.terms.get(norm, []):
                if (pid, norm) in seen:
                    continue
                seen.add((pid, norm))
                scores.setdefault(pid, []).append(score)
                reasons.append(f"prompt mentions {kind} {match.group(1)!r} of {pid}")
    return evidence


def infer_project(store: Store, prompt: str, cwd: str | os.PathLike[str] | None = None, retriever=None,
                  hits: list | None = None) -> tuple[str | None, float, list[str]]:
    """``(project id or None, confidence 0..1, reasons)`` for ``prompt`` (and a working directory)."""
    evidence = name_evidence(store, prompt, cwd)
    if not evidence.ids:
        return evidence.decide()
    if hits is None and retriever is not None and not evidence.scores and prompt.strip():
        try:
            hits = retriever.search(prompt, k=10)
        except Exception:  # evidence is optional; a broken index must not break inference
            hits = None
    evidence.add_hits(hits, prompt)
    return evidence.decide()
