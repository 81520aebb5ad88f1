"""The /ui pages over real HTTP (uvicorn on loopback, a real store), without a browser: escaping,
the security checks on every form, the --head guard, the configured reviewer, memory actions.
The browser tests (tests/test_ui_browser.py) cover the same journeys in Chromium."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import httpx
import pytest

from atocore.api import propose_memory
from atocore.memories import add_memory, get_memory, memory_history
from atocore.review import get_review
from atocore.state import propose_state
from atocore.ui.auth import loopback_host
from atocore.ui.views import health_warnings

from .fixtures_server import serve_store, two_projects  # noqa: F401  (fixture)

TOKEN = "ui-fast-token"
XSS = '<script>alert("x")</script><b onmouseover="x()">bold</b>'


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert m, "the page has no CSRF field"
    return m.group(1)


class Browser:
    """A cookie-keeping client that behaves like a same-origin browser (sends Origin)."""

    def __init__(self, url: str):
        self.url = url
        self.c = httpx.Client(base_url=url, timeout=30)

    def get(self, path: str) -> httpx.Response:
        return self.c.get(path)

    def post(self, path: str, data: dict, origin: str | None = None, **kw) -> httpx.Response:
        headers = {"Origin": origin or self.url, **kw.pop("headers", {})}
        return self.c.post(path, data=data, headers=headers, **kw)

    def form(self, page: str, action: str, data: dict, **kw) -> httpx.Response:
        return self.post(action, {"csrf": csrf_of(self.get(page).text), **data}, **kw)

    def login(self, token: str = TOKEN) -> None:
        r = self.form("/ui/login", "/ui/login", {"token": token, "next": "/ui/reviews"})
        assert r.status_code == 303, r.text


@pytest.fixture
def ui(two_projects, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ATOCORE_REVIEWER", "Rita Reviewer <rita@example.org>")
    with serve_store(two_projects, token=TOKEN) as s:
        b = Browser(s.url)
        b.store = two_projects
        yield b


def test_every_page_renders_and_escapes_record_text(ui):
    store = ui.store
    mem = add_memory(store, XSS, "knowledge", project="p04")
    p = propose_memory(store, '<img src=x onerror="alert(2)"> the polishing lap wears fast', "knowledge",
                       project="p04")
    assert p["proposed"], p
    pages = ["/ui/reviews", f"/ui/reviews/{p['review']}", "/ui/projects", "/ui/projects/p04", "/ui/memories",
             f"/ui/memories/{mem.id}", "/ui/memories?text=bold&type=knowledge", "/ui/health", "/ui/login",
             "/ui/ask?prompt=bold+alert&project=p04", "/ui/ask?prompt=bold+alert&mode=search"]
    for path in pages:
        r = ui.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "<script>alert" not in r.text and "<b onmouseover" not in r.text and "<img src" not in r.text, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in ui.get(f"/ui/memories/{mem.id}").text
    assert ui.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")
    assert ui.get("/ui/static/../app.py").status_code == 404


def test_writes_need_login_csrf_and_same_origin(ui):
    p = propose_state(ui.store, "p04", "owner", "Alice Martin", category="contact")
    page = f"/ui/reviews/{p.id}"
    approve = f"{page}/approve"
    r = ui.form(page, approve, {"head": p.head})
    assert r.status_code == 401 and "log in first" in r.text
    r = ui.form("/ui/login", "/ui/login", {"token": "wrong"})
    assert r.status_code == 403
    ui.login()
    assert ui.post(approve, {"csrf": "f" * 64, "head": p.head}).status_code == 403
    assert ui.post(approve, {"head": p.head}).status_code == 403
    r = ui.form(page, approve, {"head": p.head}, origin="http://attacker.example")
    assert r.status_code == 403 and "another site" in r.text
    r = ui.form(page, approve, {"head": p.head}, origin="null")
    assert r.status_code == 403
    assert get_review(ui.store, p.id).head == p.head  # nothing merged by any of those
    r = ui.form(page, approve, {"head": p.head})
    assert r.status_code == 303
    assert "Alice Martin" in ui.store.read("state/p04.yaml").decode()
    # a CSRF token belongs to its session: another browser's token does not work here
    other = Browser(ui.url)
    foreign = csrf_of(other.get("/ui/login").text)
    q = propose_state(ui.store, "p04", "owner", "Bob Stone", category="contact")
    assert ui.post(f"/ui/reviews/{q.id}/approve", {"csrf": foreign, "head": q.head}).status_code == 403


def test_login_redirects_only_to_our_pages(ui):
    for target in ("//evil.example/x", "https://evil.example/", "/docs", "/ui/\\evil"):
        r = ui.form("/ui/login", "/ui/login", {"token": TOKEN, "next": target})
        assert r.status_code == 303 and r.headers["location"] == "/ui/reviews", target
    r = ui.form("/ui/login", "/ui/login", {"token": TOKEN, "next": "/ui/memories?type=knowledge"})
    assert r.headers["location"] == "/ui/memories?type=knowledge"
    cookies = r.headers.get_list("set-cookie")
    tok = next(c for c in cookies if c.startswith("atocore_ui_token="))
    assert "HttpOnly" in tok and "SameSite=strict" in tok and "Path=/ui" in tok


def test_approve_refuses_a_branch_that_moved_after_it_was_read(ui):
    ui.login()
    p = propose_state(ui.store, "p04", "owner", "Alice Martin", category="contact")
    page = ui.get(f"/ui/reviews/{p.id}").text
    seen_head = re.search(r'name="head" value="([0-9a-f]{40})"', page).group(1)
    # someone adds a commit to the branch after the reviewer loaded the page
    ui.store.commit({"state/p04.yaml": ui.store.read("state/p04.yaml", p.head).replace(b"Alice Martin", b"Mallory")},
                    "sneaky edit", ref=p.ref.encode(), parents=[p.head])
    r = ui.post(f"/ui/reviews/{p.id}/approve", {"csrf": csrf_of(page), "head": seen_head})
    assert r.status_code == 409 and "changed since you read" in r.text
    assert b"Mallory" not in ui.store.read("state/p04.yaml")
    r = ui.form(f"/ui/reviews/{p.id}", f"/ui/reviews/{p.id}/approve", {"head": ""})
    assert r.status_code == 422 and "which head you read" in r.text


def test_reviewer_comes_from_the_store_config(two_projects, monkeypatch):  # noqa: F811
    store = two_projects
    monkeypatch.delenv("ATOCORE_REVIEWER", raising=False)
    store.commit({"atocore.yaml": store.read("atocore.yaml") + b"review:\n  reviewer: Cfg Person <cfg@example.org>\n"},
                 "Set the reviewer")
    p = propose_memory(store, "Interferometer runs need 20 minutes of thermal settling", "knowledge",
                       project="p04")["review"]
    with serve_store(store, token=TOKEN) as s:
        b = Browser(s.url)
        b.login()
        assert "Cfg Person" in b.get("/ui/reviews").text
        r = b.form("/ui/reviews", "/ui/reviews-batch", {"action": "reject", "id": p, "reason": ""})
        assert r.status_code == 422 and "say why" in r.text
        page = b.get("/ui/reviews").text
        head = re.search(rf'name="head:{re.escape(p)}" value="([0-9a-f]+)"', page).group(1)
        r = b.post("/ui/reviews-batch", {"csrf": csrf_of(page), "action": "approve", "id": p, f"head:{p}": head})
        assert r.status_code == 303
    log = store.log("main", limit=1)[0]
    assert f"Approve review {p}" in log.message and "Reviewed-by: Cfg Person <cfg@example.org>" in log.message
    mem_id = p.removeprefix("remember-")
    assert get_memory(store, mem_id).status == "active"


def test_supersede_and_invalidate_from_the_memory_page(ui):
    ui.login()
    mem = add_memory(ui.store, "The lap is recut every five runs", "knowledge", project="p04")
    r = ui.form(f"/ui/memories/{mem.id}", f"/ui/memories/{mem.id}/supersede",
                {"text": "The lap is recut every ten runs"})
    assert r.status_code == 303
    new_id = r.headers["location"].rsplit("/", 1)[1]
    assert get_memory(ui.store, mem.id).status == "superseded"
    assert get_memory(ui.store, new_id).supersedes == mem.id
    assert f'href="/ui/memories/{new_id}"' in ui.get(f"/ui/memories/{mem.id}").text  # "replaced by"
    r = ui.form(f"/ui/memories/{new_id}", f"/ui/memories/{new_id}/invalidate", {"reason": ""})
    assert r.status_code == 422
    r = ui.form(f"/ui/memories/{new_id}", f"/ui/memories/{new_id}/invalidate", {"reason": "measured: it is 12"})
    assert r.status_code == 303 and get_memory(ui.store, new_id).status == "invalid"
    last = memory_history(ui.store, new_id)[0]
    assert "Reason: measured: it is 12" in last.message and last.author == "Rita Reviewer <rita@example.org>"


def test_register_project_from_the_browser_is_a_proposal(ui, tmp_path):
    ui.login()
    (tmp_path / "cad").mkdir()
    r = ui.form("/ui/projects", "/ui/projects", {"id": "cad", "name": "CAD models", "aliases": "solidworks, step",
                                                 "sources": str(tmp_path / "cad"), "description": ""})
    assert r.status_code == 303
    rid = r.headers["location"].rsplit("/", 1)[1]
    page = ui.get(f"/ui/reviews/{rid}").text
    assert "CAD models" in page and "solidworks, step" in page
    assert "waiting for review" in ui.get("/ui/projects").text
    r = ui.form("/ui/projects", "/ui/projects", {"id": "Bad Id", "sources": str(tmp_path)})
    assert r.status_code == 422


def test_without_a_token_only_loopback_hosts_may_write(two_projects, monkeypatch):  # noqa: F811
    """A tokenless service writes like its API, but a DNS-rebinding page (Host: evil) cannot: the
    service's Host check refuses it (421), and with that check off the UI's own refuses it (403)."""
    p = propose_state(two_projects, "p04", "owner", "Alice Martin", category="contact")
    evil = {"Host": "rebind.evil.example:8100"}
    for allowed, status in (("", 421), ("*", 403)):
        monkeypatch.setenv("ATOCORE_ALLOWED_HOSTS", allowed)
        with serve_store(two_projects) as s:
            b = Browser(s.url)
            assert "no token" in b.get("/ui/reviews").text
            page = b.get(f"/ui/reviews/{p.id}").text
            r = b.post(f"/ui/reviews/{p.id}/approve", {"csrf": csrf_of(page), "head": p.head},
                       origin="http://rebind.evil.example:8100", headers=evil)
            assert r.status_code == status and ("loopback" in r.text or "ATOCORE_ALLOWED_HOSTS" in r.text)
    assert "Alice Martin" not in (two_projects.read("state/p04.yaml") or b"").decode()
    with serve_store(two_projects) as s:
        b = Browser(s.url)
        page = b.get(f"/ui/reviews/{p.id}").text
        r = b.post(f"/ui/reviews/{p.id}/approve", {"csrf": csrf_of(page), "head": p.head})
        assert r.status_code == 303
    assert "Alice Martin" in two_projects.read("state/p04.yaml").decode()


def test_loopback_host_never_resolves_names():
    assert loopback_host("127.0.0.1:8100") and loopback_host("localhost") and loopback_host("[::1]:8100")
    assert not loopback_host("127.0.0.1.nip.io:8100") and not loopback_host("evil.example") and not loopback_host("")


def test_health_warnings_in_plain_words():
    now = 1_800_000_000
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, timezone.utc).isoformat()

    health = {"index": {"commit": "a", "stale": False, "degraded": True, "degraded_reason": "model not found"}}
    backups = {"remotes": [
        {"remote": "laptop", "last_verified": iso(now - 3 * 86400), "commits_behind": 12},
        {"remote": "nas", "last_verified": None, "commits_behind": None},
        {"remote": "usb", "last_verified": iso(now - 600), "commits_behind": 1, "last_error": "disk full",
         "last_attempt": "t2", "last_ok": "t1"}]}
    w = health_warnings(health, backups, [], now=now)
    assert "The laptop backup is 3 days behind (12 commits not yet pushed)." in w
    assert any("'nas' has never been verified" in x for x in w)
    assert "The usb backup is 1 commit behind (last verified push 10 minutes ago)." in w
    assert "The last push to 'usb' failed: disk full" in w
    assert any(x.startswith("Search runs on keywords only: model not found") for x in w)
    assert any("no snapshot" in x for x in w)
    assert health_warnings({"index": {"commit": "a"}}, {"remotes": []}, None) == [
        "No backup remote is configured: the store exists only on this machine "
        "(add one under 'remotes:' in atocore.yaml)."]


def test_memory_cache_follows_main_commit_by_commit(store):
    from atocore.memories import invalidate_memory, list_memories, supersede_memory
    from atocore.ui.views import MemoryCache

    cache = MemoryCache()
    a = add_memory(store, "first fact about the lap", "knowledge", project="p04")
    add_memory(store, "second fact about the mirror", "knowledge")
    assert [m.id for m in cache.all(store, store.head())] == [m.id for m in list_memories(store)]
    supersede_memory(store, a.id, "corrected fact about the lap")
    c = add_memory(store, "third fact", "episodic", project="rover")
    invalidate_memory(store, c.id, "wrong")
    store.commit({"memories/not-a-memory.md": b"---\nbroken"}, "a bad file pushed by hand")
    got = cache.all(store, store.head())
    want = list_memories(store)
    assert [(m.id, m.status, m.text) for m in got] == [(m.id, m.status, m.text) for m in want]
