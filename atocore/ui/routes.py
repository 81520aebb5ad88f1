"""The pages under ``/ui``: an ``APIRouter`` whose handlers call the same functions as the HTTP
API and the CLI (review, state, memories, projects, retrieval, context). See docs/ui.md."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, unquote, urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import AtoCoreError, NotFound, ValidationError
from ..ids import check_slug
from ..records import MEMORY_STATUSES, MEMORY_TYPES
from .auth import COOKIE_PATH, SESSION_COOKIE, TOKEN_COOKIE, Auth, Refused
from .identity import reviewer_name
from .render import Templates

log = logging.getLogger("atocore.ui")
STATIC_DIR = Path(__file__).with_name("static")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
FLASH_COOKIE = "atocore_ui_flash"
MAX_FORM_BYTES = 200_000
SECURITY_HEADERS = {
    # Defence in depth behind autoescaping: no inline script, nothing from other origins.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Form(dict):
    """An ``application/x-www-form-urlencoded`` body; ``getlist`` for repeated fields."""

    def __init__(self, raw: bytes):
        self.multi = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=1000)
        super().__init__({k: v[0] for k, v in self.multi.items()})

    def getlist(self, key: str) -> list[str]:
        return self.multi.get(key, [])


def build_router(service: Any, auth: Auth) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)
    tpl = Templates()
    from .views import MemoryCache, ReviewQueue

    memories_cache = MemoryCache()
    queue = ReviewQueue()
    store = service.store
    static = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in STATIC_DIR.iterdir()
              if p.suffix in STATIC_TYPES}

    def warm() -> None:  # the first view of a big store would parse every memory and proposal
        try:
            memories_cache.all(store, store.head())
            queue.get(store)
        except Exception:  # a page will report it; warming is only a head start
            log.exception("warming the /ui caches failed")

    service.after_start(warm)  # not while the service starts: it would compete with the start for the GIL

    # ------------------------------------------------------------------ rendering

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        sid = auth.session_of(request)
        new_sid = sid is None
        if new_sid:
            sid = auth.new_session()
        flash = request.cookies.get(FLASH_COOKIE)
        try:
            reviewer, reviewer_from = reviewer_name(store)
            reviewer_error = None
        except ValidationError as exc:
            reviewer, reviewer_from, reviewer_error = None, None, str(exc)
        html = tpl.render(name, request=request, csrf=auth.csrf_for(sid), logged_in=auth.logged_in(request),
                          has_token=auth.token is not None, reviewer=reviewer, reviewer_from=reviewer_from,
                          reviewer_error=reviewer_error, flash=unquote(flash) if flash else None,
                          path=request.url.path, **ctx)
        resp = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if new_sid:
            _cookie(request, resp, SESSION_COOKIE, sid)
        if flash:
            resp.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
        return resp

    def _cookie(request: Request, resp: Response, name: str, value: str, max_age: int | None = None) -> None:
        resp.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")

    def done(request: Request, to: str, message: str) -> Response:
        """Post/redirect/get: the next page shows ``message`` once."""
        resp = RedirectResponse(to, status_code=303, headers=SECURITY_HEADERS)
        _cookie(request, resp, FLASH_COOKIE, quote(message[:600]), max_age=60)
        return resp

    def failed(request: Request, status: int, message: str, back: str) -> Response:
        return page(request, "error.html", status=status, message=message, back=back)

    async def form_of(request: Request) -> Form:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, f"the form is too large (more than {MAX_FORM_BYTES} bytes)")
        return Form(body)

    async def act(request: Request, back: str, fn: Callable[[Form], Response], need_login: bool = True) -> Response:
        """Run a state-changing form: checks first, then ``fn`` in the thread pool; errors as pages."""
        from starlette.concurrency import run_in_threadpool

        try:
            form = await form_of(request)
            auth.check_form(request, form, need_login=need_login)
            return await run_in_threadpool(fn, form)
        except Refused as exc:
            return failed(request, exc.status, exc.message, back)
        except AtoCoreError as exc:
            return failed(request, exc.status_code if exc.status_code < 500 else 503, str(exc), back)

    def reviewer() -> str:
        return reviewer_name(store)[0]

    # ------------------------------------------------------------------ static, login

    @router.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media = static[name]
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=3600",
                                                         "X-Content-Type-Options": "nosniff"})

    @router.get("")
    @router.get("/")
    def home() -> Response:
        return RedirectResponse("/ui/reviews", status_code=303)

    @router.get("/login")
    def login_page(request: Request, next: str = "/ui/reviews") -> Response:
        return page(request, "login.html", next=_local(next))

    @router.post("/login")
    async def login(request: Request) -> Response:
        def run(form: Form) -> Response:
            if auth.token is None:
                return done(request, _local(form.get("next", "")), "this service has no token: changes need no login")
            if not auth.token_ok(form.get("token", "").strip()):
                time.sleep(0.5)  # slows guessing; the token is the only secret
                return failed(request, 403, "that is not the service's token (ATOCORE_TOKEN)", "/ui/login")
            resp = done(request, _local(form.get("next", "")), "logged in")
            _cookie(request, resp, TOKEN_COOKIE, form["token"].strip(), max_age=30 * 86400)
            return resp

        return await act(request, "/ui/login", run, need_login=False)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        def run(form: Form) -> Response:
            resp = done(request, "/ui/reviews", "logged out")
            resp.delete_cookie(TOKEN_COOKIE, path=COOKIE_PATH)
            return resp

        return await act(request, "/ui/reviews", run, need_login=False)

    # ------------------------------------------------------------------ reviews

    @router.get("/reviews")
    def reviews(request: Request) -> Response:
        return page(request, "reviews.html", reviews=queue.get(store), section="reviews")

    @router.post("/reviews-batch")
    async def reviews_batch(request: Request) -> Response:
        from ..review import approve_review, reject_review

        def run(form: Form) -> Response:
            ids = form.getlist("id")
            action = form.get("action")
            if action not in ("approve", "reject"):
                raise ValidationError("action", "choose approve or reject", ["approve", "reject"])
            if not ids:
                raise ValidationError("id", "tick at least one proposal")
            reason = form.get("reason", "").strip()
            if action == "reject" and not reason:
                raise ValidationError("reason", "say why the proposals are rejected")
            who = reviewer()
            done_ids, errors = [], []
            for rid in ids:
                try:
                    if action == "approve":  # each one exactly as the list showed it (--head)
                        approve_review(store, rid, who, expect_head=form.get(f"head:{rid}") or "-")
                    else:
                        reject_review(store, rid, reason, who)
                    done_ids.append(rid)
                except AtoCoreError as exc:
                    errors.append(f"{rid}: {exc}")
            service.poke()
            verb = "approved" if action == "approve" else "rejected"
            msg = f"{verb} {len(done_ids)} of {len(ids)}" + (("; not done: " + " | ".join(errors)) if errors else "")
            return done(request, "/ui/reviews", msg)

        return await act(request, "/ui/reviews", run)

    @router.get("/reviews/{review_id:path}")
    def review_show(request: Request, review_id: str) -> Response:
        from ..review import get_review
        from .diffs import proposal_diffs

        try:
            p = get_review(store, review_id)
        except (NotFound, ValidationError) as exc:
            return failed(request, 404, str(exc), "/ui/reviews")
        return page(request, "review.html", p=p, diffs=proposal_diffs(store, p), section="reviews")

    @router.post("/reviews/{review_id:path}/approve")
    async def review_approve(request: Request, review_id: str) -> Response:
        from ..review import approve_review

        def run(form: Form) -> Response:
            head = form.get("head", "").strip()
            if not head:
                raise ValidationError("head", "the form must say which head you read (reload the proposal)")
            sha = approve_review(store, review_id, reviewer(), expect_head=head)
            service.poke()
            return done(request, "/ui/reviews", f"approved {review_id}: main is now {sha[:12]}")

        return await act(request, f"/ui/reviews/{quote(review_id)}", run)

    @router.post("/reviews/{review_id:path}/reject")
    async def review_reject(request: Request, review_id: str) -> Response:
        from ..review import reject_review

        def run(form: Form) -> Response:
            sha = reject_review(store, review_id, form.get("reason", ""), reviewer())
            service.poke()
            return done(request, "/ui/reviews", f"rejected {review_id}: main is now {sha[:12]}")

        return await act(request, f"/ui/reviews/{quote(review_id)}", run)

    # ------------------------------------------------------------------ projects

    @router.get("/projects")
    def projects_list(request: Request) -> Response:
        from ..projects.registry import list_projects
        from ..state import list_state_projects
        from .views import last_refresh, pending_registrations

        regs = list_projects(store) + pending_registrations(store, queue.get(store))
        with_state = set(list_state_projects(store)) if store.head() else set()
        refreshed = {d["id"]: last_refresh(store, d["id"]) for d in regs if not d["review"]}
        unregistered = sorted(with_state - {d["id"] for d in regs})
        return page(request, "projects.html", projects=regs, refreshed=refreshed, unregistered=unregistered,
                    section="projects")

    @router.post("/projects")
    async def projects_register(request: Request) -> Response:
        from ..projects.registry import register_project

        def run(form: Form) -> Response:
            sources = [s.strip() for s in form.get("sources", "").splitlines() if s.strip()]
            aliases = [a.strip() for a in form.get("aliases", "").split(",") if a.strip()]
            p = register_project(store, form.get("id", "").strip(), sources, name=form.get("name") or None,
                                 aliases=aliases, description=form.get("description", ""), author=reviewer())
            service.poke()
            return done(request, f"/ui/reviews/{quote(p.id)}", f"registration proposed as review {p.id}")

        return await act(request, "/ui/projects", run)

    @router.get("/projects/{project_id}")
    def project_show(request: Request, project_id: str) -> Response:
        from ..projects.registry import projects as registered
        from ..state import get_state
        from .views import entry_history, last_refresh, state_by_category

        try:
            check_slug(project_id, "project")
        except ValidationError as exc:
            return failed(request, 404, str(exc), "/ui/projects")
        proj = registered(store).get(project_id)
        state = get_state(store, project_id)
        if proj is None and not state.entries:
            return failed(request, 404, f"project {project_id!r} is not registered and has no trusted state",
                          "/ui/projects")
        return page(request, "project.html", pid=project_id, proj=proj, groups=state_by_category(state),
                    history=entry_history(store, project_id), last=last_refresh(store, project_id),
                    report=None, section="projects")

    @router.post("/projects/{project_id}/refresh")
    async def project_refresh(request: Request, project_id: str) -> Response:
        from ..projects.refresh import refresh as do_refresh

        def run(form: Form) -> Response:
            check_slug(project_id, "project")
            reports = do_refresh(store, project_id, author=reviewer())
            service.follow_main()  # exactly what POST /refresh does: the watcher indexes, we wait
            r = reports[0]
            skipped = ", ".join(f"{n} {why}" for why, n in sorted(r.skipped_counts.items()))
            msg = (f"refreshed {project_id}: {len(r.added)} added, {len(r.changed)} changed, {len(r.removed)} "
                   f"removed, {r.unchanged} unchanged" + (f"; skipped {skipped}" if skipped else ""))
            if r.skipped:
                msg += " (" + "; ".join(f"{s['path']}: {s['reason']}" for s in r.skipped[:10]) + ")"
            return done(request, f"/ui/projects/{project_id}", msg)

        return await act(request, f"/ui/projects/{project_id}", run)

    # ------------------------------------------------------------------ memories

    @router.get("/memories")
    def memories(request: Request, type: str = "", status: str = "", project: str = "", text: str = "",
                 offset: int = 0) -> Response:
        from .views import filter_memories

        type = type if type in MEMORY_TYPES else ""
        status = status if status in MEMORY_STATUSES else ""
        mems = memories_cache.all(store, store.head())
        pg = filter_memories(mems, type, status, project.strip()[:64], text[:200], max(0, offset), 50)
        projects = sorted({m.project for m in mems if m.project})
        query = {k: v for k, v in pg.filters.items() if v}
        prev_q = urlencode({**query, "offset": max(0, pg.offset - pg.limit)})
        next_q = urlencode({**query, "offset": pg.offset + pg.limit})
        return page(request, "memories.html", pg=pg, types=MEMORY_TYPES, statuses=MEMORY_STATUSES,
                    projects=projects, prev_q=prev_q, next_q=next_q, section="memories")

    @router.get("/memories/{memory_id}")
    def memory_show(request: Request, memory_id: str) -> Response:
        from ..memories import get_memory, memory_history

        try:
            mem = get_memory(store, memory_id)
        except (NotFound, ValidationError) as exc:
            return failed(request, 404, str(exc), "/ui/memories")
        replaced_by = next((m for m in memories_cache.all(store, store.head()) if m.supersedes == mem.id), None)
        return page(request, "memory.html", m=mem, history=memory_history(store, mem.id, limit=50),
                    replaced_by=replaced_by, section="memories")

    @router.post("/memories/{memory_id}/supersede")
    async def memory_supersede(request: Request, memory_id: str) -> Response:
        from ..memories import supersede_memory

        def run(form: Form) -> Response:
            new = supersede_memory(store, memory_id, form.get("text", ""), author=reviewer())
            service.poke()
            return done(request, f"/ui/memories/{new.id}", f"memory {memory_id} superseded by {new.id}")

        return await act(request, f"/ui/memories/{quote(memory_id)}", run)

    @router.post("/memories/{memory_id}/invalidate")
    async def memory_invalidate(request: Request, memory_id: str) -> Response:
        from ..memories import invalidate_memory

        def run(form: Form) -> Response:
            invalidate_memory(store, memory_id, form.get("reason", ""), author=reviewer())
            service.poke()
            return done(request, f"/ui/memories/{quote(memory_id)}", f"memory {memory_id} marked invalid")

        return await act(request, f"/ui/memories/{quote(memory_id)}", run)

    # ------------------------------------------------------------------ ask

    @router.get("/ask")
    def ask(request: Request, prompt: str = "", project: str = "", mode: str = "context") -> Response:
        from ..api import INDEX_UNAVAILABLE, IndexUnavailable, context_args
        from ..context.build import load_last_build
        from ..projects.registry import projects as registered

        mode = mode if mode in ("context", "search") else "context"
        result: dict[str, Any] | None = None
        error = None
        prompt = prompt[:20_000]
        try:
            pid = check_slug(project, "project") if project else None
            if prompt.strip():
                if mode == "search":
                    try:
                        result = service.api.search(prompt, project=pid, k=10)
                    except IndexUnavailable:
                        error = INDEX_UNAVAILABLE.format(health="Health")
                else:  # what POST /context/build returns, without becoming the "last context served"
                    result = service.api.context(context_args({"prompt": prompt, "project": pid}), keep=False)
        except AtoCoreError as exc:
            error = str(exc)
        last = service.last_build or load_last_build(store)
        return page(request, "ask.html", prompt=prompt, project=project, mode=mode, result=result, error=error,
                    projects=sorted(registered(store)), last=_redacted(last), section="ask")

    # ------------------------------------------------------------------ health

    @router.get("/health")
    def health(request: Request) -> Response:
        from .views import ago, health_warnings

        h = service.health()
        backups = snaps = None
        if auth.token is not None and auth.logged_in(request):  # GET /admin/backup needs the token too
            from ..backup import status as backup_status
            from ..store.snapshots import list_snapshots

            backups = backup_status(store)
            snaps = list_snapshots(store)
        warnings = health_warnings(h, backups, snaps)
        return page(request, "health.html", h=h, backups=backups, snaps=(snaps or [])[:20],
                    n_snaps=len(snaps or []), warnings=warnings, ago=ago, section="health")

    return router


def _local(target: str) -> str:
    """Only our own pages as a redirect target (no open redirect)."""
    if not target.startswith("/ui/") or target.startswith("//") or "\\" in target or "\n" in target:
        return "/ui/reviews"
    return target


def _redacted(build: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last build as served, but without the user's prompt (it may hold anything)."""
    if build is None:
        return None
    prompt = build.get("prompt") or ""
    out = dict(build)
    out["prompt"] = f"[prompt hidden: {len(prompt)} characters]"
    if prompt.strip() and isinstance(out.get("context"), str):
        out["context"] = out["context"].replace(prompt, "[prompt hidden]")
    return out
