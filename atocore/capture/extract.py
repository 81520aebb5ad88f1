"""Candidate memories from explicit signals in captured turns, proposed for review.

Conservative on purpose. Off unless ``capture.extract: true`` (then every newly captured
turn is looked at) or someone runs ``atocore extract``. Only what the *person* wrote is
read, never the assistant's reply (a model's own words must not become its memory), and only
explicit signals count:

- "remember (that) ...", "note that ...", "keep in mind ..."      -> project / knowledge
- "we decided ...", "decision: ...", "let's go with ..."           -> project (a decision)
- "I prefer ...", "I like ...", "I'd rather ..."                   -> preference
- "from now on ...", "always ...", "never ...", "please stop ..."  -> adaptation
- "actually, ...", "correction: ...", "that's wrong, ..."          -> knowledge (a correction)
- "my name is ...", "I work at/as ..."                             -> identity

Questions, code blocks, quoted text, redacted secrets and very short or very long sentences
are skipped. Each turn's candidates become one proposal on ``review/extract-<turn id>`` with
status ``candidate``, a ``source`` naming the turn (``interactions/...jsonl#<id>``), and the
turn itself quoted in the proposal body, so ``atocore review show`` displays where they came
from. Nothing is active without approval. A candidate whose text matches a memory on main
(any status) or one already waiting in a review is not proposed again, and a turn whose
proposal was approved or rejected before is not proposed again either.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import ValidationError
from ..ids import new_ulid
from ..records import MAX_SHORT_CHARS, Interaction, Memory, interaction_path, memory_from_dict, parse_memory

log = logging.getLogger("atocore.capture")

REVIEW_PREFIX = "extract-"


@dataclass
class Candidate:
    text: str
    type: str
    signal: str
    confidence: float = 0.7
    tags: list[str] = field(default_factory=list)


@dataclass
class Extractor:
    """A plugin-provided extractor: ``extract(interaction) -> [Candidate]``."""

    name: str
    extract: Callable[[Interaction], list[Candidate]]
    description: str = ""


def extractors() -> list[Extractor]:
    """Every registered extractor: the built-in signal rules (the ``signals`` default plugin)
    and any plugin's (``register_extractors``); one whose registration fails is logged by name."""
    from ..plugins import collect

    return list(collect("register_extractors").values())
# --------------------------------------------------------------------------- dedupe and proposing


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    wa, wb = set(a.split()), set(b.split())
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= 0.85


class Known:
    """Texts of memories on main (any status) and in open reviews, plus turns already reviewed."""

    def __init__(self, store, scan_history: bool = True):
        from ..review import list_reviews

        self.texts: list[str] = []
        for _path, raw in store.iter_records("memories/"):
            try:
                self.texts.append(normalize(parse_memory(raw).text))
            except ValidationError:
                continue
        self.open_reviews: set[str] = set()
        for p in list_reviews(store):
            self.open_reviews.add(p.id)
            for path, raw in p.files.items():
                if raw and path.startswith("memories/"):
                    try:
                        self.texts.append(normalize(parse_memory(raw, path).text))
                    except ValidationError:
                        continue
        self.reviewed: set[str] = set()
        # from the history index (flat in history); walking every commit is the fallback
        indexed = store.history.review_ids() if scan_history and store.head() else None
        if indexed is not None:
            self.reviewed = indexed
        elif scan_history and store.head():
            for info in store.log():
                for m in re.finditer(r"^Review-Id:\s*(\S+)", info.message, re.M):
                    self.reviewed.add(m.group(1))

    def seen(self, text: str) -> bool:
        norm = normalize(text)
        return any(_similar(norm, t) for t in self.texts)

    def add(self, text: str) -> None:
        self.texts.append(normalize(text))


def review_id_for(inter: Interaction) -> str:
    # Ids accepted before capture checked them (a stored "x..y.lock") must still make a valid ref.
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", inter.id)
    safe = re.sub(r"\.{2,}", "-", safe)[:150].strip("-.") or "turn"
    while safe.endswith(".lock"):
        safe = safe[: -len(".lock")].rstrip("-.") or "turn"
    return REVIEW_PREFIX + safe


def source_ref(inter: Interaction) -> str:
    ref = f"{interaction_path(inter)}#{inter.id}"
    return ref if len(ref) <= MAX_SHORT_CHARS else ref[:MAX_SHORT_CHARS]


def _quote(text: str, limit: int = 600) -> str:
    text = text.strip()
    if len(text) > limit:
        text = text[:limit].rstrip() + " [...]"
    return "\n".join("> " + line for line in text.splitlines()) or "> (empty)"


def candidate_memories(inter: Interaction, known: Known,
                       redact_patterns: tuple[str, ...] = ()) -> list[tuple[Memory, Candidate]]:
    from ..redact import redact

    out = []
    for ex in extractors():
        try:
            cands = ex.extract(inter)
        except Exception as exc:  # one broken extractor must not stop the others; say which
            log.warning("extractor %r failed on %s and is skipped: %s: %s", ex.name, inter.id, type(exc).__name__, exc)
            continue
        for cand in cands:
            # A plugin extractor's text, or a turn stored before a redact pattern was configured,
            # must not carry a secret onto a review branch.
            cand.text = redact(cand.text, redact_patterns)
            if known.seen(cand.text):
                continue
            mem = memory_from_dict({
                "id": new_ulid(), "type": cand.type, "text": cand.text, "project": inter.project,
                "status": "candidate", "confidence": cand.confidence, "source": source_ref(inter),
                "tags": ["extracted", cand.signal, *cand.tags][:20],
            })
            known.add(cand.text)
            out.append((mem, cand))
    return out


def propose_candidates(store, interactions: Iterable[Interaction], known: Known | None = None,
                       dry_run: bool = False, author: str | None = None) -> list[dict]:
    """Propose candidate memories for each turn; return one summary dict per proposal (or would-be one)."""
    from ..config import load_config
    from ..review import propose
    from ..redact import redact

    interactions = list(interactions)
    if not interactions:
        return []
    patterns = tuple(load_config(store).redact_patterns)
    # A brand-new turn cannot have been reviewed before: skip the history scan for single captures.
    known = known or Known(store, scan_history=len(interactions) > 1)
    results = []
    for inter in interactions:
        rid = review_id_for(inter)
        if rid in known.open_reviews or rid in known.reviewed:
            continue
        found = candidate_memories(inter, known, patterns)
        if not found:
            continue
        summary = {"review": rid, "interaction": inter.id, "source": source_ref(inter),
                   "memories": [{"id": m.id, "type": m.type, "text": m.text, "signal": c.signal} for m, c in found]}
        if not dry_run:
            body = (f"Candidate memories extracted from a captured {inter.source} turn "
                    f"(session {inter.session_id}).\nSource turn: {source_ref(inter)}\n\n"
                    + "\n".join(f"- [{m.type}, {c.signal}] {m.text}" for m, c in found)
                    + f"\n\nPrompt:\n{_quote(redact(inter.prompt, patterns))}"
                    + f"\n\nResponse:\n{_quote(redact(inter.response, patterns))}")
            title = f"Candidate memories from {inter.source} turn {inter.id}"[:180]
            try:
                p = propose(store, {m.path: m.dump() for m, _ in found}, title, body=body, kind="memory",
                            author=author, review_id=rid)
            except Exception as exc:  # one bad turn must not stop the others
                log.warning("cannot propose candidates for %s: %s", inter.id, exc)
                summary["error"] = f"{type(exc).__name__}: {exc}"
                results.append(summary)
                continue
            summary["review"] = p.id
            known.open_reviews.add(p.id)
        results.append(summary)
    return results


def iter_interactions(store, session: str | None = None, rev: str = "main") -> Iterable[Interaction]:
    from ..records import parse_interactions

    for path, raw in store.iter_records("interactions/", rev):
        if not path.endswith(".jsonl"):
            continue
        try:
            turns = parse_interactions(raw, path)
        except ValidationError:
            continue
        for inter in turns:
            if session is None or inter.session_id == session:
                yield inter
