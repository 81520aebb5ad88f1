"""Recording one captured turn: validate, redact, append, commit (idempotent by id).

This is what ``POST /interactions``, ``atocore hook ...`` (store-direct mode) and
``atocore import ...`` call. A turn lands as one JSON line in
``interactions/YYYY/MM/<session>.jsonl``, in one commit made under the store's writer lock.
A writer only: it may *search* (read-only) to infer the project, and the index follows main
afterwards (the service's watcher, or ``atocore index update``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from ..config import load_config
from ..errors import ValidationError
from ..ids import check_capture_id
from ..projects.infer import infer_project
from ..records import Interaction, interaction_from_dict, interaction_path, parse_interactions
from ..redact import redact, redact_value

log = logging.getLogger("atocore.capture")

# Fields a caller may send; anything else is a 422 naming the field (check_fields does that).
REDACTED_FIELDS = ("prompt", "response")


def derive_id(source: str, session_id: str, prompt: str, response: str) -> str:
    """A stable id for a turn whose client gave none: the same turn always gets the same id.

    Computed from the *redacted* text, so nothing derived from a secret is stored.
    """
    h = hashlib.sha256("\x1f".join((source, session_id, prompt, response)).encode("utf-8", "surrogatepass"))
    return "h-" + h.hexdigest()[:32]


def _session_files(store, inter: Interaction, rev: str) -> list[str]:
    """Every ``interactions/YYYY/MM/<session>.jsonl`` of this turn's session, its own month first.

    A retried turn may carry a new timestamp, however far from the first one: the id is looked
    up in every month's file of the session (a few tree lookups per month), not only nearby.
    """
    own = interaction_path(inter)
    name = own.rsplit("/", 1)[1]
    paths = [own]
    try:
        years = store.files(rev, "interactions/")
    except Exception:
        return paths
    for path in sorted(years):
        if path.endswith("/" + name) and path != own:
            paths.append(path)
    return paths


def find_interaction(store, inter: Interaction, rev: str = "main") -> Interaction | None:
    """The stored turn with ``inter.id`` in the same session (any month)."""
    needle = json.dumps(inter.id, ensure_ascii=False)
    for path in _session_files(store, inter, rev):
        raw = store.read(path, rev)
        if not raw or needle.encode() not in raw:
            continue
        for line in raw.splitlines():
            if needle.encode() not in line:
                continue
            try:
                data = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(data, dict) and data.get("id") == inter.id:
                try:
                    return interaction_from_dict(data)
                except ValidationError:
                    return None
    return None


def clean_text(value: Any) -> Any:
    """Make captured text storable: lone surrogates (from JSON ``\\ud800`` escapes) become U+FFFD
    and NUL characters are dropped, in strings at any depth. Terminal output carries such bytes;
    refusing the whole turn over them would lose it."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
        return value
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_text(v) for v in value]
    return value


def prepare_interaction(data: dict[str, Any], extra_patterns: list[str] | tuple[str, ...] = ()) -> Interaction:
    """Validate a ``POST /interactions`` body and return the redacted record (not yet stored)."""
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object with source, session_id, prompt and response")
    data = {k: clean_text(v) if k in ("prompt", "response", "meta") else v for k, v in data.items()}
    given_id = data.get("id")
    # Validate as given first, so errors name the caller's field (a placeholder id if none).
    interaction_from_dict({**data, "id": given_id if given_id is not None else "pending"})
    # Ids become file names and git ref components downstream (extract's review branches):
    # refuse here what would break there, rather than accept it and fail later for everyone.
    if given_id is not None:
        check_capture_id(given_id, "id")
    check_capture_id(data["session_id"], "session_id")
    patterns = tuple(extra_patterns)
    for key in REDACTED_FIELDS:
        data[key] = redact(data[key], patterns)
    if isinstance(data.get("meta"), dict):
        data["meta"] = redact_value(data["meta"], patterns)
    if given_id is None:
        data["id"] = derive_id(data["source"], data["session_id"], data["prompt"], data["response"])
    # Redaction can empty a turn (e.g. all of it inside <private>): then there is nothing to keep.
    return interaction_from_dict(data)


def _infer_project(store, inter: Interaction, retriever) -> str | None:
    cwd = inter.meta.get("cwd") if isinstance(inter.meta, dict) else None
    try:
        project, _confidence, _ = infer_project(store, inter.prompt, cwd=cwd if isinstance(cwd, str) else None,
                                               retriever=retriever)
    except Exception as exc:  # inference is a nicety; never lose the turn over it
        log.warning("project inference failed for interaction %s: %s", inter.id, exc)
        return None
    return project or None  # infer_project already returns None when the evidence is unclear


def record_interaction(store, data: dict[str, Any], retriever=None) -> tuple[Interaction, bool]:
    """Store one captured turn; return ``(interaction, created)``.

    ``created`` is False when a turn with the same id is already stored in that session
    (then nothing is written and the stored record is returned). Secrets in prompt, response
    and meta are redacted before the commit. A ``retriever`` is only searched (read-only), to
    infer the project of a turn that names none; the index is not touched. With
    ``capture.extract: true`` in the store config, candidate memories are proposed for review.
    """
    cfg = load_config(store)
    inter = prepare_interaction(data, cfg.redact_patterns)
    if inter.project is None:
        inter.project = _infer_project(store, inter, retriever)

    with store.lock():
        existing = find_interaction(store, inter)
        if existing is not None:
            return existing, False
        path = interaction_path(inter)
        old = store.read(path) or b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        new = old + inter.dump_line()
        parse_interactions(new[len(old):], path)  # the line we add must read back (belt and braces)
        where = f" in project {inter.project}" if inter.project else ""
        store.commit(
            {path: new},
            f"Capture {inter.source} turn {inter.id}\n\n"
            f"Session {inter.session_id}{where}; secrets redacted before commit.",
        )

    if cfg.extract:
        try:
            from .extract import propose_candidates

            propose_candidates(store, [inter])
        except Exception as exc:
            log.warning("candidate extraction for %s failed: %s", inter.id, exc)
    return inter, True
