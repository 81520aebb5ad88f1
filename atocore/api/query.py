"""The query layer: what the HTTP routes, the MCP tools, the CLI and the review pages call.

An ``Api`` answers for one store with the payloads of the binding HTTP API (POST /search,
POST /context/build, GET /state/{project}, GET /projects, POST /memories) and the MCP
``remember`` proposal. The caller says where the retriever comes from: the service hands over
its own (``None`` while a first index build runs: searches then answer 503 and context builds
say so in their notes); the CLI and the stdio MCP server open the store's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import AtoCoreError
from ..ids import check_slug
from ..store import Store
from .auth import check_token
from .requests import ContextArgs, project_arg

log = logging.getLogger("atocore.api")

INDEX_BUILDING = "the search index is being built; only trusted state is included for now"
INDEX_UNAVAILABLE = "the search index is being built or cannot be opened; see {health}"


class IndexUnavailable(AtoCoreError):
    """No index can answer yet (HTTP 503)."""

    status_code = 503

    def __init__(self, health: str = "GET /health"):
        super().__init__(INDEX_UNAVAILABLE.format(health=health))


def search_payload(retriever: Any, query: str, project: str | None = None, k: int = 10) -> dict:
    """The object returned by POST /search: hits, and the project inferred (and preferred) when
    none is given."""
    from ..projects.infer import infer_project

    prefer = None
    inferred: dict | None = None
    if project is None:
        try:
            pid, conf, reasons = infer_project(retriever.store, query, retriever=retriever)
        except Exception:  # inference is a hint; never fail a search over it
            pid, conf, reasons = None, 0.0, []
        if pid:
            prefer = pid
            inferred = {"project": pid, "confidence": conf, "reasons": list(reasons)}
    hits = retriever.search(query, project=project, k=k, prefer_project=prefer)
    out: dict[str, Any] = {"project": project, "hits": [h.to_dict() for h in hits]}
    if inferred:
        out["inferred"] = inferred
    return out


def _save_build(store: Store, data: dict) -> None:
    from ..context.build import save_last_build

    try:
        save_last_build(store, data)  # `atocore debug-context` shows it
    except OSError:
        log.exception("cannot save the last context build")


@dataclass
class Api:
    """The query layer over ``store``.

    ``retriever()`` returns the retriever that can answer now, or None; ``index_ready()`` is False
    while a first index build runs; ``keep_build(data)`` keeps a served context build (for
    GET /debug/context); ``token`` is the service's write token (None: writes need none)."""

    store: Store
    retriever: Callable[[], Any]
    index_ready: Callable[[], bool] = lambda: True
    keep_build: Callable[[dict], None] | None = None
    token: str | None = None

    @classmethod
    def for_store(cls, store: Store) -> "Api":
        """The CLI's and the stdio MCP server's: the store's own retriever, builds saved to disk."""
        from ..retrieval import open_retriever

        def retriever() -> Any:
            try:
                return open_retriever(store)
            except Exception:  # state still answers without an index (as in the service)
                log.exception("cannot open the index")
                return None

        return cls(store, retriever, keep_build=lambda data: _save_build(store, data))

    # ------------------------------------------------------------------ auth

    def check_write(self, authorization: str | None, what: str = "this write", where: str = "") -> None:
        check_token(self.token, authorization, what=what, where=where)

    def check_admin(self, authorization: str | None) -> None:
        check_token(self.token, authorization, admin=True)

    # ------------------------------------------------------------------ reads

    def search(self, query: str, project: str | None = None, k: int = 10) -> dict:
        """POST /search: IndexUnavailable while no index can answer."""
        project = project_arg(project)
        retriever = self.retriever() if self.index_ready() else None
        if retriever is None:
            raise IndexUnavailable()
        return search_payload(retriever, query, project=project, k=k)

    def context(self, args: ContextArgs, keep: bool = True) -> dict:
        """POST /context/build for arguments checked by ``context_args``; ``keep`` makes it the last
        build served (GET /debug/context)."""
        from ..context.build import DEFAULT_BUDGET, build_context

        ready = self.index_ready()
        b = build_context(self.store, self.retriever() if ready else None, args.prompt, project=args.project,
                          budget_chars=args.budget_chars or DEFAULT_BUDGET, cwd=args.cwd, format=args.format)
        if not ready:
            b.notes.append(INDEX_BUILDING)
        data = b.to_dict()
        if keep and self.keep_build is not None:
            self.keep_build(data)
        return data

    def state(self, project: str) -> dict:
        """GET /state/{project}: the trusted state on main."""
        from ..state import get_state

        st = get_state(self.store, check_slug(project, "project"))
        return {"project": st.project, "entries": [e.to_dict() for e in st.entries]}

    def projects(self, pending: bool = False) -> list[dict]:
        """GET /projects: registrations on main (and, with ``pending``, ones waiting in review)."""
        from ..projects.registry import list_projects

        return list_projects(self.store, include_pending=pending)

    def project(self, project_id: str) -> dict:
        from ..projects.registry import get_project

        return get_project(self.store, check_slug(project_id, "project_id")).to_dict()

    # ------------------------------------------------------------------ writes (the caller checks the token)

    def add_memory(self, text: str, type: str, project: str | None = None, confidence: float = 1.0,
                   source: str = "api", tags: list[str] | None = None, status: str = "active") -> dict:
        """POST /memories: an active memory committed on main."""
        from ..memories import add_memory

        mem = add_memory(self.store, text, type, project=project_arg(project), confidence=confidence,
                         source=source, tags=tags or [], status=status)
        return mem.to_dict()

    def remember(self, text: str, type: str, project: str | None = None) -> dict:
        """The MCP ``remember`` tool: a candidate memory proposed for review."""
        from .remember import propose_memory

        return propose_memory(self.store, text, type, project)
