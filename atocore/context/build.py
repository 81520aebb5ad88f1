"""Context build: the short, trustworthy supplement an assistant gets before it answers.

Order and rules:

1. The project's trusted state, always and first (it is few, short, reviewed entries), capped at
   half the budget and each value at ``STATE_VALUE_CHARS``.
2. Relevant active memories (the project's and global ones) from retrieval.
3. The best source chunks of the project (other projects' chunks are never mixed in once the
   project is known).

Relevance threshold: a retrieved memory or chunk is kept only if it shares content words (not
stop words, >= 3 characters) with the prompt, or its fused score is at least
``VECTOR_ONLY_FRACTION`` of the best hit's. Fused scores are relative to the best hit of each
query, so no absolute cut-off works across queries; but a hit that neither matches a prompt word
nor ranks near the top is, with a small static embedding model, almost always noise. Short
prompts need one shared word, longer ones one per five content words (at most three), so one
incidental common word in a long prompt does not pull in a document. If no hit shares the
prompt's words at all, vector-only hits are dropped too (the best of them scores 1 by
construction and is noise itself). When the stay-empty decision below has weighed the hits and
found that the store matches the prompt, and no hit shares enough of its words (a long prompt
whose words are in other forms: "rovers", "grids"), the hits sharing one word are kept instead
of none: the decision is the one that says whether to stay empty. Global memories (no project)
come from their own small search and need a shared word. When nothing passes, the supplement
holds only the trusted state (or nothing), never padding.

Staying empty: before any of that, a prompt the store matches nothing of (``_no_match``: too
little of its information is in words the index has, and no top hit holds much of it, measured
against the store's own calibrated line, ``retrieval/calibration.py``) gets no memories or chunks
at all, with the reason in ``notes`` (and so in ``/debug/context``).

Near-duplicates (word-set Jaccard >= ``DUP_JACCARD``, or one text inside another) are dropped,
the higher-ranked copy kept. The rendered text is kept within ``budget_chars``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import now_iso
from ..store import Store
from ..store.head import main_head
from .formats import DEFAULT_FORMAT, get_format
from .model import ContextBuild, ContextItem
from ..text import WordMemo, content_terms, count_shared

if TYPE_CHECKING:
    from ..retrieval.hits import Hit

DEFAULT_BUDGET = 4000
MIN_BUDGET = 200
MAX_BUDGET = 100_000
STATE_VALUE_CHARS = 300
STATE_SHARE = 0.5
SEARCH_K = 12
GLOBAL_MEMORY_K = 4
VECTOR_ONLY_FRACTION = 0.75
DUP_JACCARD = 0.8
MAX_INTERACTIONS = 2
ITEM_OVERHEAD = 80          # estimated per-item markup (headers, provenance) before the exact check
MIN_TRUNCATED = 160         # do not hand out a chunk tail shorter than this
LAST_BUILD_FILE = "last-context.json"
NO_MATCH_KNOWN_WEIGHT = 1.5  # the stay-empty score: coverage + 1.5 x known (= retrieval.calibration.KNOWN_WEIGHT)
NO_MATCH_BELOW = 1.15
NO_MATCH_NAMED_BELOW = 1.8  # the line when the prompt names something no chunk has (docs/retrieval.md)
CATEGORY_ORDER = ("summary", "status", "focus", "decision", "constraint", "fact", "contact")


# --------------------------------------------------------------------------- caches per main commit

class _StateCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[tuple[str, str | None, str], list[ContextItem]] = {}

    def get(self, store: Store, head: str | None, project: str) -> list[ContextItem]:
        key = (str(store.path), head, project)
        with self.lock:
            hit = self.data.get(key)
        if hit is not None:
            return hit
        items = _state_items(store, head, project)
        with self.lock:
            if len(self.data) > 256:
                self.data.clear()
            self.data[key] = items
        return items


_state_cache = _StateCache()


def _state_items(store: Store, head: str | None, project: str) -> list[ContextItem]:
    if head is None:
        return []
    from ..errors import ValidationError
    from ..state import get_state

    try:
        state = get_state(store, project, rev=head)
    except ValidationError:
        return []  # a bad push; reported by the index status, never served
    order = {c: i for i, c in enumerate(CATEGORY_ORDER)}
    entries = sorted(state.entries, key=lambda e: (order.get(e.category, len(order)), e.key))
    items = []
    for e in entries:
        value = " ".join(e.value.split())
        truncated = len(value) > STATE_VALUE_CHARS
        if truncated:
            value = value[: STATE_VALUE_CHARS - 1].rstrip() + "…"
        items.append(ContextItem(section="state", id=f"{project}:{e.key}", text=value,
                                 source=f"state/{project}.yaml#{e.key}", path=f"state/{project}.yaml",
                                 commit=head, project=project, title=e.key, origin="state",
                                 meta={"category": e.category, "key": e.key, "updated": e.updated},
                                 truncated=truncated))
    return items


# --------------------------------------------------------------------------- retrieval


def _hit_item(hit: Hit) -> ContextItem:
    section = "memory" if hit.kind == "memory" else "chunk"
    text = hit.text or ""
    if text[:1].isspace() or text[-1:].isspace():
        text = text.strip()
    return ContextItem(section=section, id=str(hit.id), text=text, source=hit.source,
                       path=hit.path or hit.source, commit=hit.commit, project=hit.project, title=hit.title or "",
                       lines=tuple(hit.lines) if hit.lines else None, score=float(hit.score or 0.0),
                       origin=hit.origin or ("memory" if section == "memory" else "source"), meta={})


def _search(retriever: Any, prompt: str, project: str | None) -> list[Any]:
    return list(retriever.search(prompt, project=project, k=SEARCH_K))


def _global_memories(retriever: Any, prompt: str) -> list[Any]:
    """Memories that belong to no project (identity, preferences): relevant whatever the project.
    A project-filtered search leaves them out, so they get their own small (cheap) search, skipped
    when the index holds none."""
    if not retriever.holds("memory", None):
        return []
    hits = retriever.search(prompt, k=GLOBAL_MEMORY_K, kinds=["memory"])
    return [h for h in hits if h.project is None]


def _merge(hits: list[Any], extra: list[Any]) -> list[Any]:
    """Add ``extra`` hits not already present, keeping score order (scores are relative per search,
    so the extra ones are placed by their own score against the same 0..1 scale)."""
    if not extra:
        return hits
    ids = {h.id for h in hits}
    out = hits + [h for h in extra if h.id not in ids]
    out.sort(key=lambda h: -float(h.score or 0.0))
    return out


def _relevant(hits: list[Any], prompt: str, lexical_only: bool = False, matches: bool = False
              ) -> tuple[list[Any], int]:
    """Hits worth showing (see the module doc for the rule); returns (kept, dropped count).
    ``matches``: the stay-empty decision found that the store matches the prompt; when no hit
    shares enough of its words, the hits sharing one are kept (the decision already weighed them)."""
    terms = content_terms(prompt)
    if not hits or not terms:
        return [], len(hits)
    need = min(3, max(1, -(-len(terms) // 5)))  # 1 word for short prompts, 1 per 5 words, at most 3
    matched = [count_shared(((h.text or "").lower(), (h.title or "").lower()), terms, need) >= need
               for h in hits]
    if not any(matched) and matches and need > 1:
        matched = [count_shared(((h.text or "").lower(), (h.title or "").lower()), terms, 1) >= 1 for h in hits]
        lexical_only = True
    if not any(matched):
        return [], len(hits)  # nothing shares the prompt's words: the vector side alone is noise here
    top = max(float(h.score or 0.0) for h in hits) or 1.0
    kept = [h for h, m in zip(hits, matched)
            if m or (not lexical_only and float(h.score or 0.0) >= VECTOR_ONLY_FRACTION * top)]
    return kept, len(hits) - len(kept)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _is_dup(words: frozenset[str], text: str, seen: list[tuple[frozenset[str], str]]) -> bool:
    """Near-duplicate of an item already taken: Jaccard >= DUP_JACCARD, or contained in it (or it in this)."""
    for w2, t2 in seen:
        inter = len(words & w2)
        union = len(words) + len(w2) - inter
        if union and inter / union >= DUP_JACCARD:
            return True
        if inter == len(words) or inter == len(w2):  # one word set inside the other: check the text
            norm = _norm(text)
            if norm in t2 or t2 in norm:
                return True
    return False


def _no_match(retriever: Any, prompt: str, hits: list[Any]) -> tuple[bool, str | None]:
    """(judged, why): whether the match evidence weighed the prompt at all, and why the store
    holds nothing for it (the build then stays empty) or None.

    From the retriever's match evidence (``Retriever.match_evidence``): ``known``, the share of
    the prompt's information (IDF mass) on words the index has at all, ``coverage``, the largest
    share one of the top hits holds, and ``unknown_names``, words that look like names (a capital
    inside the sentence, an inner capital, letters with digits) that no chunk has, and compound
    identifiers no chunk has with a word no chunk has (``libcamera-still``). A prompt about
    something else has distinctive words no chunk contains, and no hit that holds most of it.

    The line on ``coverage + 1.5 * known`` is the store's own (``line``: calibrated on its text,
    ``retrieval/calibration.py``, at most 1.8), or 1.15 while there is none (a small store, or
    before the first calibration is done); it is 1.8 when the prompt names something the store
    has never seen. Measured on the quality suite's docs set and both dev sets, with
    off-topic prompts for each (docs/retrieval.md)."""
    if retriever is None or not hits:
        return False, None
    ev = retriever.match_evidence(prompt, hits)
    if ev is None:  # no content word, or no index
        return False, None
    score = ev["coverage"] + NO_MATCH_KNOWN_WEIGHT * ev["known"]
    names = ev.get("unknown_names") or []
    own = ev.get("line")
    # the store's own line, never above the names line: a prompt naming something the store has
    # never seen stays judged on the higher line (and a store that repeats itself cannot empty all)
    base = min(own, NO_MATCH_NAMED_BELOW) if own else NO_MATCH_BELOW
    line = NO_MATCH_NAMED_BELOW if names else base
    if score >= line:
        return True, None
    which = (f"this store's line {base:.2f}, calibrated on its own text" if own
             else f"the fixed line {base:.2f}, the store has no calibrated one")
    why = (f"; it names {', '.join(repr(n) for n in names[:5])}, which no indexed text has, so the line is {line:.2f}"
           if names else "")
    return True, (f"no match in the store: {ev['known']:.0%} of the prompt's information is in words the index has, "
                  f"and the best hit holds {ev['coverage']:.0%} of it (coverage + {NO_MATCH_KNOWN_WEIGHT} x known = "
                  f"{score:.2f} < {line:.2f}; {which}){why}; supplement left empty")


def _answering_first(items: list[ContextItem], state_rank: dict[str, int], prompt: str) -> list[ContextItem]:
    """Trusted state with the entry that answers the prompt first: entries the search ranked, in
    its order; then entries sharing more of the prompt's words; then the usual category order."""
    if len(items) < 2:
        return items
    terms = content_terms(prompt)
    inf = len(state_rank) + 1

    def key(pos_item: tuple[int, ContextItem]) -> tuple:
        pos, it = pos_item
        text = (it.title.replace("_", " ").replace("-", " ") + " " + it.text).lower()
        shared = count_shared((text,), terms, len(terms)) if terms else 0
        return (state_rank.get(f"state:{it.id}", inf), -shared, pos)

    return [it for _, it in sorted(enumerate(items), key=key)]


# --------------------------------------------------------------------------- the build


def build_context(store: Store, retriever: Any, prompt: str, project: str | None = None,
                  budget_chars: int = DEFAULT_BUDGET, cwd: str | None = None, format: str | None = None
                  ) -> ContextBuild:
    """Assemble, render and return a context build for ``prompt`` (see the module doc)."""
    t0 = time.perf_counter()
    fmt = get_format(format or DEFAULT_FORMAT)
    budget = max(MIN_BUDGET, min(int(budget_chars), MAX_BUDGET))
    head = main_head(store)  # in the service, the head its watcher read (atocore/store/head.py)
    build = ContextBuild(prompt=prompt, project=project, budget_chars=budget, format=fmt.name, commit=head,
                         created=now_iso())
    dropped = {"duplicate": 0, "irrelevant": 0, "budget": 0, "other_project": 0}

    from ..projects.infer import name_evidence
    from ..projects.registry import projects as registered

    hits: list[Any] | None = None
    extra: list[Any] = []
    project_from_hits = False
    if project is not None:
        build.project_source, build.confidence = "given", 1.0
        if project not in registered(store):
            build.notes.append(f"project {project!r} is not registered; only its state and memories are used")
    else:
        evidence = name_evidence(store, prompt, cwd)
        pid, conf, reasons = evidence.decide()
        if pid is None and retriever is not None:
            # Unclear from names: search once across projects and let the hits vote.
            hits = _search(retriever, prompt, None)
            evidence.add_hits(hits, prompt)
            pid, conf, reasons = evidence.decide()
            project_from_hits = pid is not None
        build.reasons = reasons
        build.confidence = conf
        if pid is not None:
            build.project, build.project_source = pid, "inferred"
    project = build.project

    if retriever is not None and prompt.strip():
        if hits is None:  # an inferred project keeps the cross-project hits; they are filtered below
            hits = _search(retriever, prompt, project)
            if project is not None:
                extra = _global_memories(retriever, prompt)
    hits = hits or []
    build.index_commit = next((h.commit for h in hits if h.commit), None)
    # a prompt that names one of the projects (or comes from inside its folder) is about it
    named = build.project_source == "inferred" and not project_from_hits
    judged, no_match = (False, None) if named else _no_match(retriever, prompt, hits)
    # the decision weighed the hits and found a match: the relevance filter below must not undo it
    matches = judged and no_match is None
    if no_match:
        build.notes.append(no_match)
        dropped["no_match"] = len(hits) + len(extra)
        hits, extra = [], []
        if project_from_hits:  # the hits that voted for it match nothing: no project either
            build.notes.append(f"project {project} was inferred from those hits only; dropped")
            build.project, build.project_source, project = None, "none", None
    if project is not None:
        before = len(hits)
        hits = [h for h in hits if h.project in (project, None)]
        dropped["other_project"] += before - len(hits)
    # state comes from the store, whole; the search's ranking of state entries orders it
    state_rank = {h.id: n for n, h in enumerate(hits) if h.kind == "state"}
    hits = [h for h in hits if h.kind != "state"]
    words = WordMemo()
    hits, irrelevant = _relevant(hits, prompt, matches=matches)
    dropped["irrelevant"] += irrelevant
    if extra:  # global memories come from their own search: only a shared word admits them
        kept_extra, n = _relevant(extra, prompt, lexical_only=True)
        dropped["irrelevant"] += n
        hits = _merge(hits, kept_extra)

    items: list[ContextItem] = []
    used = 0
    if project is not None:
        state_cap = int(budget * STATE_SHARE)
        for it in _answering_first(_state_cache.get(store, head, project), state_rank, prompt):
            cost = len(it.text) + len(it.source) + ITEM_OVERHEAD // 2
            if used + cost > state_cap:
                dropped["budget"] += 1
                continue
            items.append(it)
            used += cost

    seen: list[tuple[frozenset[str], str]] = [(words[i.text], _norm(i.text)) for i in items]
    memories = [_hit_item(h) for h in hits if h.kind == "memory"]
    chunks = [_hit_item(h) for h in hits if h.kind != "memory"]
    interactions = 0
    candidates = memories + chunks
    for n, it in enumerate(candidates):
        if budget - used - ITEM_OVERHEAD < MIN_TRUNCATED and it.section == "chunk":
            dropped["budget"] += len(candidates) - n  # full: the rest cannot fit
            break
        if it.origin == "interaction":
            if interactions >= MAX_INTERACTIONS:
                dropped["budget"] += 1
                continue
        wset = words[it.text]
        if not it.text or _is_dup(wset, it.text, seen):
            dropped["duplicate"] += 1
            continue
        remaining = budget - used - ITEM_OVERHEAD - len(it.source)
        if len(it.text) > remaining:
            if it.section == "chunk" and remaining >= MIN_TRUNCATED:
                it.text = it.text[: remaining - 1].rstrip() + "…"
                it.truncated = True
                if it.lines:
                    kept_lines = it.text.count("\n")
                    it.lines = (it.lines[0], min(it.lines[1], it.lines[0] + kept_lines))
            else:
                dropped["budget"] += 1
                continue
        if it.origin == "interaction":
            interactions += 1
        items.append(it)
        seen.append((wset, _norm(it.text)))
        used += len(it.text) + ITEM_OVERHEAD + len(it.source)

    build.items = items
    build.context = fmt.render(build)
    # The estimate above is close; make the budget exact by dropping from the end.
    while len(build.context) > budget and build.items:
        removed = build.items.pop()
        dropped["budget"] += 1
        if removed.section == "state" and not build.items:
            break
        build.context = fmt.render(build)
    if len(build.context) > budget:
        build.items, build.context = [], fmt.render(ContextBuild(prompt=prompt, project=project))
    if not any(i.section != "state" for i in build.items):
        build.notes.append("nothing relevant found in memories or sources")
    build.dropped = {k: v for k, v in dropped.items() if v}
    build.elapsed_ms = (time.perf_counter() - t0) * 1000
    return build


# --------------------------------------------------------------------------- last build, kept whole


def last_build_path(store: Store) -> Path:
    return store.index_dir / LAST_BUILD_FILE


def _extra_patterns(store: Store) -> tuple[str, ...]:
    try:
        from ..config import load_config

        return tuple(load_config(store).redact_patterns)
    except Exception:  # a broken config must not stop the built-in redaction
        return ()


def redact_build(data: dict[str, Any], extra_patterns: tuple[str, ...] = ()) -> dict[str, Any]:
    """The build with what came from the request (prompt, cwd, reasons, notes) redacted.

    The prompt is the user's own text, so it may hold a secret; the rest of a build comes from
    the store, which is redacted before commit. The response to the caller is not touched: it
    is only what is *kept* (on disk, for GET /debug/context) that must not hold the secret.
    """
    from ..redact import redact_value

    out = dict(data)
    for key in ("prompt", "cwd", "reasons", "notes"):
        if key in out:
            try:
                out[key] = redact_value(out[key], extra_patterns)
            except Exception:  # a bad extra pattern: the built-in rules still apply
                out[key] = redact_value(out[key])
    return out


def save_last_build(store: Store, data: dict[str, Any], extra_patterns: tuple[str, ...] | None = None) -> None:
    """Keep the build as served, its prompt redacted, readable by the owner only (0600), replaced
    atomically (a reader never sees half a file). ``extra_patterns``: the store's redaction
    patterns when the caller has them at hand (default: read from the store's config)."""
    data = redact_build(data, _extra_patterns(store) if extra_patterns is None else extra_patterns)
    path = last_build_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{LAST_BUILD_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, ensure_ascii=False))
    os.chmod(tmp, 0o600)  # O_CREAT's mode is masked by the umask; this is not
    os.replace(tmp, path)


def load_last_build(store: Store) -> dict[str, Any] | None:
    try:
        return json.loads(last_build_path(store).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
