"""Proposing a candidate memory (the MCP ``remember`` tool): review first, nothing active."""

from __future__ import annotations

from ..errors import ValidationError
from ..ids import new_ulid
from .requests import project_arg

REMEMBER_SOURCE = "mcp"
REMEMBER_CONFIDENCE = 0.7  # an assistant's own wording, unlike extract.py's "remember that" from the person
REVIEW_PREFIX = "remember-"


def propose_memory(store, text: str, type: str, project: str | None = None, author: str | None = None) -> dict:
    """Propose one candidate memory on ``review/remember-<memory id>``; nothing on main changes.

    Reuses the extraction path's pieces (``atocore.capture.extract``): the same record
    validation, the same duplicate check against main and open reviews, the same proposal kind.
    """
    from ..capture.extract import Known
    from ..capture.redact import redact
    from ..config import load_config
    from ..projects.registry import projects as registered
    from ..records import memory_from_dict
    from ..review import propose

    project = project_arg(project)
    if project is not None and project not in registered(store):
        raise ValidationError("project", f"{project!r} is not a registered project",
                              sorted(registered(store)) or None)
    # An assistant may pass on what it saw (a pasted key, say): redact as capture does, since a
    # review branch is in the store's history even if the proposal is rejected.
    if isinstance(text, str):
        text = redact(text, load_config(store).redact_patterns)
    mem = memory_from_dict({"id": new_ulid(), "type": type, "text": text, "project": project,
                            "status": "candidate", "confidence": REMEMBER_CONFIDENCE, "source": REMEMBER_SOURCE,
                            "tags": ["mcp", "remember"]})
    if Known(store, scan_history=False).seen(mem.text):
        return {"proposed": False, "review": None, "memory": None,
                "reason": "a memory with this text (or nearly) already exists on main or waits in review"}
    where = f" for {project}" if project else ""
    excerpt = " ".join(mem.text.split())
    title = f"Candidate {mem.type} memory{where} via MCP: {excerpt}"
    title = title if len(title) <= 120 else title[:117] + "..."
    body = (f"Proposed by an assistant through the MCP `remember` tool.\n\n- [{mem.type}] {mem.text}\n\n"
            f"Nothing is active until a person approves this review.")
    p = propose(store, {mem.path: mem.dump()}, title, body=body, kind="memory", author=author,
                review_id=REVIEW_PREFIX + mem.id)
    return {"proposed": True, "review": p.id, "ref": p.ref, "memory": mem.to_dict(), "reason": None}
