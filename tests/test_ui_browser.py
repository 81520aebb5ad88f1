"""The /ui pages in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium) against a real ``atocore serve`` subprocess over loopback, with the real git CLI.

One browser and one server for the whole module; tests run in file order and build on each
other's store (a reviewer's evening: log in, approve, reject, a pushed branch, a hostile memory,
forged requests). Screenshots of every page go to ``$ATOCORE_UI_SHOTS`` or a pytest temp folder.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("browser tests need Debian's chromium and chromium-driver (run .ci/browser); not installed here",
                allow_module_level=True)
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extra installs it
    pytest.skip("browser tests need selenium (pip install -e '.[test]')", allow_module_level=True)

from atocore.api import propose_memory
from atocore.projects import refresh, register_project
from atocore.retrieval import open_retriever
from atocore.state import propose_state
from atocore.store import init_store

from .fixtures_server import OPTICS_DOCS, free_port, write_tree

TOKEN = "ui-test-token-7f3a"
REVIEWER = "Rita Reviewer <rita@example.org>"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> polishing slurry note'


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Lap Top", "GIT_AUTHOR_EMAIL": "laptop@example.org",
           "GIT_COMMITTER_NAME": "Lap Top", "GIT_COMMITTER_EMAIL": "laptop@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


class UI:
    def __init__(self, url: str, store, driver, shots: Path, proc: subprocess.Popen):
        self.url, self.store, self.driver, self.shots, self.proc = url, store, driver, shots, proc
        self.taken: list[Path] = []

    def go(self, path: str) -> None:
        self.driver.get(self.url + path)

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def submit(self, button_selector: str) -> None:
        """Click a submit button and wait for the next page to load."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.css(button_selector).click()
        WebDriverWait(self.driver, 20).until(lambda d: _stale(old))
        WebDriverWait(self.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def shot(self, name: str, width: int = 1200) -> Path:
        """A full-page screenshot at ``width`` CSS pixels."""
        d = self.driver
        d.set_window_size(width, 900)
        height = d.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        d.set_window_size(width, min(max(int(height) + 200, 600), 6000))
        d.execute_script("window.scrollTo(0, 0)")
        path = self.shots / f"{name}.png"
        d.save_screenshot(str(path))
        d.set_window_size(1200, 900)
        self.taken.append(path)
        return path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def _stale(element) -> bool:
    try:
        element.is_enabled()
        return False
    except Exception:
        return True


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"atocore serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling a real condition: the server answering
    raise RuntimeError("atocore serve did not answer in time")


@pytest.fixture(scope="module")
def ui(tmp_path_factory, model_path):
    tmp = tmp_path_factory.mktemp("ui-browser")
    shots = Path(os.environ.get("ATOCORE_UI_SHOTS") or tmp / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    store, _ = init_store(tmp / "store")
    optics = write_tree(tmp / "optics", OPTICS_DOCS)
    register_project(store, "p04", [optics], name="P04 telescope", aliases=["primary mirror"],
                     description="Optics of the P04 telescope", approve=True)
    propose_state(store, "p04", "focus", "Finish the interferometry of the primary by March", category="focus",
                  approve=True)
    refresh(store, "p04", retriever=open_retriever(store, model=model_path))
    bare = tmp / "laptop.git"
    git("init", "-q", "--bare", str(bare))
    store.commit({"atocore.yaml": (store.read("atocore.yaml") or b"") + f"remotes:\n  laptop: {bare}\n".encode()},
                 "Configure the laptop backup remote")

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOCORE_")}
    env.update(ATOCORE_TOKEN=TOKEN, ATOCORE_REVIEWER=REVIEWER, ATOCORE_EMBED_MODEL=model_path, HF_HUB_OFFLINE="1",
               ATOCORE_HOME=str(tmp / "home"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "atocore", "--store", str(store.path), "serve", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1200,900", "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    driver = None
    try:
        _wait_http(url, proc)
        driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=opts)
        driver.set_page_load_timeout(30)
        u = UI(url, store, driver, shots, proc)
        yield u
        print(f"\nUI screenshots ({len(u.taken)}) in {shots}")
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _open_review(ui: UI, title_part: str) -> None:
    ui.go("/ui/reviews")
    link = next(a for a in ui.driver.find_elements(By.CSS_SELECTOR, "a.title") if title_part in a.text)
    old = ui.driver.find_element(By.TAG_NAME, "html")
    link.click()
    WebDriverWait(ui.driver, 20).until(lambda d: _stale(old))


def _main_log(ui: UI, n: int = 1) -> str:
    return git("--git-dir", str(ui.store.path), "log", "-n", str(n), "--format=%H%n%an <%ae>%n%B%n---", "main")


def test_login_with_the_token(ui):
    ui.go("/ui/reviews")
    assert "Log in" in ui.text()
    ui.go("/ui/login?next=/ui/reviews")
    ui.shot("login")
    ui.css("input[name=token]").send_keys("not-the-token")
    ui.submit("form[action='/ui/login'] button")
    assert "not the service's token" in ui.text()
    ui.go("/ui/login?next=/ui/reviews")
    ui.css("input[name=token]").send_keys(TOKEN)
    ui.submit("form[action='/ui/login'] button")
    assert ui.driver.current_url.endswith("/ui/reviews")
    assert "logged in" in ui.text() and "Log out" in ui.text()
    cookie = ui.driver.get_cookie("atocore_ui_token")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert ui.driver.execute_script("return document.cookie").find(TOKEN) == -1  # script cannot read it


def test_approve_state_proposal_then_context_build_serves_it(ui):
    p = propose_state(ui.store, "p04", "lap-size", "Pitch lap diameter is 300 mm", category="decision",
                      author="Ada Assistant <ada@example.org>")
    ui.go("/ui/reviews")
    assert "Set p04 state lap-size" in ui.text()
    ui.shot("reviews")
    _open_review(ui, "Set p04 state lap-size")
    body = ui.text()
    assert "Ada Assistant" in body and "Pitch lap diameter is 300 mm" in body
    assert ui.css("tr.added th").text == "lap-size"
    ui.shot("review-state")
    ui.shot("review-state-phone", width=390)
    ui.submit("form[action$='/approve'] button")
    assert f"approved {p.id}" in ui.text()

    log = _main_log(ui)
    assert f"Approve review {p.id}" in log and f"Reviewed-by: {REVIEWER}" in log
    with ui.api() as c:
        built = c.post("/context/build", json={"prompt": "What lap size do we polish with?", "project": "p04"}).json()
    assert "Pitch lap diameter is 300 mm" in built["context"]
    assert any(i["source"] == "state/p04.yaml#lap-size" for i in built["items"])


def test_reject_candidate_with_reason_lands_in_git_log(ui):
    res = propose_memory(ui.store, "The lap is recut with a brass tool every ten runs", "knowledge", project="p04")
    rid = res["review"]
    _open_review(ui, "The lap is recut")
    assert "approving makes this candidate memory active" in ui.text()
    ui.shot("review-memory")
    ui.css("textarea[name=reason]").send_keys("Wrong: the tool is steel, not brass")
    ui.submit("form[action$='/reject'] button")
    assert f"rejected {rid}" in ui.text()
    log = _main_log(ui)
    assert f"Reject review {rid}" in log
    assert "Reason: Wrong: the tool is steel, not brass" in log and f"Rejected-by: {REVIEWER}" in log
    assert rid not in git("--git-dir", str(ui.store.path), "branch", "--list", "review/*")


def test_batch_approve_candidates(ui):
    a = propose_memory(ui.store, "Cerium oxide slurry is mixed at 10 percent", "knowledge", project="p04")["review"]
    b = propose_memory(ui.store, "Polishing runs start at 8 am", "episodic", project="p04")["review"]
    ui.go("/ui/reviews")
    ui.css("#pick-all").click()  # the small script ticks every candidate
    assert all(box.is_selected() for box in ui.driver.find_elements(By.CSS_SELECTOR, "input.pick"))
    ui.shot("reviews-batch")
    ui.shot("reviews-batch-phone", width=390)
    ui.submit("button[name=action][value=approve]")
    assert "approved 2 of 2" in ui.text()
    log = _main_log(ui, 2)
    assert f"Approve review {a}" in log and f"Approve review {b}" in log
    ui.go("/ui/memories?status=active&project=p04")
    assert "Cerium oxide slurry is mixed at 10 percent" in ui.text()
    ui.shot("memories")


def test_branch_pushed_from_a_clone_appears_and_is_approved(ui, tmp_path):
    clone = tmp_path / "clone"
    git("clone", "-q", "--branch", "main", str(ui.store.path), str(clone))
    state = clone / "state" / "p04.yaml"
    state.write_text(state.read_text().replace("Finish the interferometry of the primary by March",
                                               "Finish the interferometry of the primary by April"))
    git("commit", "-qam", "Move the focus deadline to April", "-m", "The interferometer is back in April.",
        cwd=clone)
    git("push", "-q", "origin", "HEAD:refs/heads/review/laptop-focus", cwd=clone)
    # and a broken one: the page lists what is wrong and offers no approval
    (clone / "memories").mkdir(exist_ok=True)
    git("checkout", "-q", "-b", "broken", "origin/main", cwd=clone)
    (clone / "state" / "p04.yaml").write_text("entries: [this is not: a state file")
    git("commit", "-qam", "Broken state from the laptop", cwd=clone)
    git("push", "-q", "origin", "HEAD:refs/heads/review/laptop-broken", cwd=clone)

    _open_review(ui, "Broken state from the laptop")
    assert "cannot be approved" in ui.text()
    assert ui.css("form[action$='/approve'] button").get_attribute("disabled") is not None
    ui.shot("review-invalid")

    _open_review(ui, "Move the focus deadline to April")
    body = ui.text()
    assert "Lap Top" in body and "by March" in body and "by April" in body
    ui.shot("review-pushed")
    ui.submit("form[action$='/approve'] button")
    assert "approved laptop-focus" in ui.text()
    log = _main_log(ui)
    assert "Approve review laptop-focus: Move the focus deadline to April" in log
    assert "Proposed-by: Lap Top <laptop@example.org>" in log and f"Reviewed-by: {REVIEWER}" in log
    assert b"by April" in ui.store.read("state/p04.yaml")


def test_memory_with_html_renders_as_text(ui):
    with ui.api() as c:
        r = c.post("/memories", json={"text": HOSTILE, "type": "knowledge", "project": "p04"},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201, r.text
    mid = r.json()["id"]
    ui.go(f"/ui/memories/{mid}")
    assert ui.css("pre.memory-text").text == HOSTILE  # shown as the characters it holds
    assert ui.driver.execute_script("return window.__pwned === undefined")
    assert not ui.driver.find_elements(By.CSS_SELECTOR, "main img")
    ui.shot("memory-hostile")
    ui.go("/ui/memories?text=polishing+slurry+note")
    assert "<script>" in ui.text()
    assert ui.driver.execute_script("return window.__pwned === undefined")
    ui.go("/ui/ask?prompt=polishing+slurry+note&project=p04&mode=search")
    assert ui.driver.execute_script("return window.__pwned === undefined")


def test_project_page_refresh_ask_and_health(ui):
    ui.go("/ui/projects")
    ui.shot("projects")
    ui.go("/ui/projects/p04")
    assert "Pitch lap diameter is 300 mm" in ui.text() and "decision" in ui.text()
    ui.submit("form[action='/ui/projects/p04/refresh'] button")
    assert "refreshed p04: 0 added, 0 changed, 0 removed, 3 unchanged" in ui.text()
    for d in ui.driver.find_elements(By.CSS_SELECTOR, ".entry details"):
        d.find_element(By.TAG_NAME, "summary").click()
    assert "by March" in ui.text() and "by April" in ui.text()  # the focus entry's history
    ui.shot("project")
    ui.shot("project-phone", width=390)

    ui.go("/ui/ask?prompt=How+big+is+the+polishing+lap%3F&project=p04")
    assert "What the assistant receives" in ui.text() and "state/p04.yaml#lap-size" in ui.text()
    ui.shot("ask-context")
    ui.go("/ui/ask?prompt=interferometer+wavelength&mode=search")
    assert "lines" in ui.text() and "score" in ui.text()
    with ui.api() as c:
        c.post("/context/build", json={"prompt": "my secret plan for the interferometer", "project": "p04"})
    ui.go("/ui/ask")
    assert "[prompt hidden: 37 characters]" in ui.text()
    assert "my secret plan" not in ui.driver.page_source
    ui.shot("ask-search-last")

    with ui.api() as c:
        pushed = c.post("/admin/backup", json={"remote": "laptop"}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert pushed.json()["ok"] is True, pushed.text
    propose_state(ui.store, "p04", "owner", "Alice Martin", category="contact", approve=True)
    ui.go("/ui/health")
    text = ui.text()
    assert "laptop" in text and "The laptop backup is 2 commits behind" in text
    ui.shot("health")
    ui.shot("health-phone", width=390)


def test_forged_and_tokenless_actions_are_refused(ui, tmp_path):
    p = propose_state(ui.store, "p04", "lap-size", "Pitch lap diameter is 250 mm", category="decision")
    branch = f"refs/heads/review/{p.id}"
    with ui.api() as c:
        page = c.get(f"/ui/reviews/{p.id}")  # a fresh session without the token cookie
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        form = {"csrf": csrf, "head": p.head}
        origin = {"Origin": ui.url}
        r = c.post(f"/ui/reviews/{p.id}/approve", data=form, headers=origin)
        assert r.status_code == 401 and "log in first" in r.text
        c.cookies.set("atocore_ui_token", TOKEN, path="/ui")
        r = c.post(f"/ui/reviews/{p.id}/approve", data={**form, "csrf": "0" * 64}, headers=origin)
        assert r.status_code == 403 and "security token" in r.text
        r = c.post(f"/ui/reviews/{p.id}/approve", data=form, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "another site" in r.text
    assert ui.store.head(branch.encode()) == p.head

    # A real cross-site page that auto-submits a form to the logged-in browser's service.
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "index.html").write_text(
        f'<form id="f" method="post" action="{ui.url}/ui/reviews/{p.id}/approve">'
        f'<input name="head" value="{p.head}"><input name="csrf" value="guess"></form>'
        '<script>document.getElementById("f").submit()</script>')
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(evil), **k)  # noqa: E731
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        evil_port = s.getsockname()[1]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", evil_port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        ui.driver.get(f"http://localhost:{evil_port}/index.html")
        WebDriverWait(ui.driver, 20).until(lambda d: d.current_url.startswith(ui.url))
        WebDriverWait(ui.driver, 20).until(lambda d: "Not done" in d.find_element(By.TAG_NAME, "body").text)
        assert "refused" in ui.text()
        ui.shot("forged-refused")
    finally:
        httpd.shutdown()
    assert ui.store.head(branch.encode()) == p.head  # still open, nothing merged
    assert "Pitch lap diameter is 300 mm" in ui.store.read("state/p04.yaml").decode()
