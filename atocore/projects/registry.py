"""Project registrations: ``projects/<id>.yaml`` on main, changed only through review.

``register_project`` and ``update_project`` build the new file, validate it with the store's
schema (``atocore.records.project_from_dict``) and hand it to ``atocore.review.propose``; with
``approve=True`` the proposal is merged at once (the operator shortcut).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

from ..errors import NotFound, ValidationError
from ..ids import check_slug
from ..records import Project, now_iso, parse_project, project_from_dict, project_path
from ..store import Store
from ..store.head import main_head

PROJECTS_PREFIX = "projects/"

_cache_lock = threading.Lock()
_cache: dict[str, tuple[str | None, dict[str, Project]]] = {}


def _clean_aliases(aliases: Iterable[str], project_id: str, name: str) -> list[str]:
    out: list[str] = []
    seen = {project_id.lower(), name.strip().lower()}
    for i, a in enumerate(aliases):
        if not isinstance(a, str) or not a.strip():
            raise ValidationError(f"aliases[{i}]", "must be non-empty text")
        a = " ".join(a.split())
        if a.lower() not in seen:
            seen.add(a.lower())
            out.append(a)
    return out


def _source_root(path: str | Path, include: list[str] | None = None, exclude: list[str] | None = None,
                 must_exist: bool = True) -> dict[str, Any]:
    p = Path(path).expanduser()
    if must_exist and not p.is_dir():
        raise ValidationError("source", f"{str(path)!r} is not a folder on this machine")
    root: dict[str, Any] = {"path": str(p.resolve()) if must_exist else str(p)}
    if include:
        root["include"] = list(include)
    if exclude:
        root["exclude"] = list(exclude)
    return root


def projects(store: Store, rev: str = "main") -> dict[str, Project]:
    """Valid registrations at ``rev`` by id (cached per main commit; invalid files skipped)."""
    head = main_head(store) if rev == "main" else store.resolve(rev)
    key = f"{store.path}@{rev}"
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == head:
            return hit[1]
    out: dict[str, Project] = {}
    if head is not None:
        for path, sha in sorted(store.files(head, PROJECTS_PREFIX).items()):
            if not path.endswith(".yaml"):
                continue
            try:
                proj = parse_project(store.read_blob(sha), path)
            except ValidationError:
                continue  # reported by the index status; never used
            out[proj.id] = proj
    with _cache_lock:
        _cache[key] = (head, out)
    return out


def list_projects(store: Store, include_pending: bool = False) -> list[dict[str, Any]]:
    """Registrations on main (and, if asked, ones still waiting on a review branch)."""
    out = []
    for p in projects(store).values():
        out.append({**p.to_dict(), "review": None})
    if include_pending:
        from ..review import list_reviews

        for r in list_reviews(store):
            for path in r.paths:
                if not (path.startswith(PROJECTS_PREFIX) and path.endswith(".yaml")):
                    continue
                try:
                    proj = parse_project(store.read(path, r.head) or b"", path)
                except ValidationError:
                    continue
                out.append({**proj.to_dict(), "status": "proposed", "review": r.id})
    out.sort(key=lambda d: (d["id"], d["review"] or ""))
    return out


def get_project(store: Store, project_id: str) -> Project:
    check_slug(project_id, "project")
    proj = projects(store).get(project_id)
    if proj is None:
        pending = [d["review"] for d in list_projects(store, include_pending=True)
                   if d["id"] == project_id and d["review"]]
        hint = (f"; its registration waits in review {pending[0]} ('atocore review approve {pending[0]}')"
                if pending else "; 'atocore project list' shows the registered ones")
        raise NotFound(f"project {project_id!r} is not registered{hint}")
    return proj


def _propose(store: Store, proj: Project, title: str, body: str, approve: bool, author: str | None,
             reviewer: str | None):
    from ..review import propose

    return propose(store, {proj.path: proj.dump()}, title, body=body, kind="project", author=author,
                   approve=approve, reviewer=reviewer)


def register_project(store: Store, project_id: str, sources: Iterable[str | Path | dict], name: str | None = None,
                     aliases: Iterable[str] = (), description: str = "", approve: bool = False,
                     author: str | None = None, reviewer: str | None = None, must_exist: bool = True):
    """Propose a new registration (merged at once with ``approve``); return the ``Proposal``."""
    check_slug(project_id, "id")
    if project_id in projects(store):
        raise ValidationError("id", f"project {project_id!r} is already registered; use 'atocore project update'")
    roots = []
    for s in sources:
        if isinstance(s, dict):
            roots.append(_source_root(s.get("path", ""), s.get("include"), s.get("exclude"), must_exist))
        else:
            roots.append(_source_root(s, must_exist=must_exist))
    if not roots:
        raise ValidationError("source", "a registration needs at least one source folder (--source DIR)")
    name = (name or project_id).strip()
    data = {"id": project_id, "name": name, "description": (description or "").strip(),
            "aliases": _clean_aliases(aliases, project_id, name), "sources": roots,
            # The file only reaches main through approval, so it says what main will hold.
            "status": "approved", "created": now_iso()}
    proj = project_from_dict(data)
    summary = ", ".join(r.path for r in proj.sources)
    body = (f"Register project {proj.id} ({proj.name}).\n\nSources: {summary}\n"
            f"Aliases: {', '.join(proj.aliases) or '-'}\n\n{proj.description}").strip()
    return _propose(store, proj, f"Register project {proj.id}", body, approve, author, reviewer)


def update_project(store: Store, project_id: str, *, name: str | None = None, description: str | None = None,
                   add_aliases: Iterable[str] = (), remove_aliases: Iterable[str] = (),
                   add_sources: Iterable[str | Path] = (), remove_sources: Iterable[str] = (),
                   include: list[str] | None = None, exclude: list[str] | None = None,
                   approve: bool = False, author: str | None = None, reviewer: str | None = None):
    """Propose a refined registration (aliases, globs, description, sources) through review."""
    proj = get_project(store, project_id)
    data = proj.to_dict()
    if name is not None:
        data["name"] = name.strip()
    if description is not None:
        data["description"] = description.strip()
    drop = {a.lower() for a in remove_aliases}
    missing = [a for a in remove_aliases if a.lower() not in {x.lower() for x in proj.aliases}]
    if missing:
        raise ValidationError("remove_alias", f"{missing[0]!r} is not an alias of {project_id}", proj.aliases)
    data["aliases"] = _clean_aliases([a for a in proj.aliases if a.lower() not in drop] + list(add_aliases),
                                     proj.id, data["name"])
    roots = [dict(r) for r in data["sources"]]
    if remove_sources:
        wanted = {str(Path(s).expanduser().resolve()) for s in remove_sources} | set(remove_sources)
        unknown = [s for s in remove_sources if not any(r["path"] in wanted for r in roots)]
        if unknown:
            raise ValidationError("remove_source", f"{unknown[0]!r} is not a source of {project_id}",
                                  [r["path"] for r in roots])
        roots = [r for r in roots if r["path"] not in wanted]
    for s in add_sources:
        roots.append(_source_root(s))
    for r in roots:
        if include is not None:
            r["include"] = list(include)
        if exclude is not None:
            r["exclude"] = list(exclude)
    if not roots:
        raise ValidationError("source", "a registration needs at least one source folder")
    data["sources"] = roots
    data["status"] = "approved"
    new = project_from_dict(data)
    if new.dump() == proj.dump():
        raise ValidationError("update", "nothing to change: the registration already says exactly this")
    return _propose(store, new, f"Update project {proj.id}", f"Refine the registration of {proj.id}.",
                    approve, author, reviewer)


__all__ = ["projects", "list_projects", "get_project", "register_project", "update_project", "project_path"]
