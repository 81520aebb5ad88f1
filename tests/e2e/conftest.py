"""End-to-end fixtures: the real Claude Code and OpenClaw (installed by tests/e2e/install.sh into
a cache folder outside the clone), a fake Anthropic Messages API on loopback, and a real
``atocore serve`` on a free port with a temporary store.

A program that is not installed makes its tests SKIP with the reason install.sh left behind
(``pytest -rs`` prints it); nothing here passes silently. Every test runs the programs with a
private HOME and config folder, telemetry, auto-update and non-essential traffic turned off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.fake_anthropic import FakeAnthropic
from tests.fixtures_capture import atocore_serve, free_port, store_turns, wait_for  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)  # `atocore` lives here; the hooks find it on PATH
SECRET = "sk-ant-api03-" + "Q" * 93 + "AA"  # a key-shaped secret: must never reach the store


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("ATOCORE_E2E_CACHE") or os.path.join(base, "atocore-e2e"))


def _tool(name: str, rel: str) -> Path:
    c = cache_dir()
    skip = c / f"{name}.skip"
    if skip.exists():
        pytest.skip(f"{name} is not installed: {skip.read_text().strip()}")
    path = c / name / "node_modules" / ".bin" / rel
    if not path.exists():
        pytest.skip(f"{name} is not installed at {path}; run tests/e2e/install.sh (CI does)")
    return path


def node_bin() -> str:
    p = cache_dir() / "node-bin"
    return p.read_text().strip() if p.exists() else ""


def base_env(home: Path, api: FakeAnthropic) -> dict:
    path = os.pathsep.join(p for p in (VENV_BIN, node_bin(), os.environ.get("PATH", "")) if p)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE", "OPENCLAW", "ATOCORE_"))}
    env.update({
        "PATH": path, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local/share"),
        "ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-ant-e2e-fake-key",
        # No network beyond the fake API: telemetry, error reports, auto-update, feature flags off.
        "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
        "OPENCLAW_DISABLE_UPDATE_CHECK": "1", "DO_NOT_TRACK": "1", "NO_COLOR": "1",
        "ATOCORE_HOME": str(home / ".atocore"), "ATOCORE_EMBED_MODEL": os.environ.get("ATOCORE_EMBED_MODEL", ""),
        "HF_HUB_OFFLINE": "1",
    })
    return env


@pytest.fixture
def api():
    a = FakeAnthropic()
    yield a
    a.close()


@dataclass
class AtoCore:
    url: str
    store_path: Path
    project_dir: Path

    def turns(self) -> list[dict]:
        from atocore.store import open_store

        return store_turns(open_store(self.store_path))

    def wait_turns(self, pred, timeout: float = 30) -> list[dict]:
        return wait_for(lambda: [t for t in self.turns() if pred(t)], timeout=timeout) or []


STATE_FACT = "The P04 pitch lap is 300 mm; polishing uses cerium oxide"


def seed_store(tmp: Path) -> tuple[Path, Path]:
    """A store with project p04 whose folder is the assistant's working folder, and one state fact."""
    from atocore.projects import register_project
    from atocore.state import propose_state
    from atocore.store import init_store

    project = tmp / "p04"
    project.mkdir(parents=True)
    (project / "README.md").write_text("# P04\n\nThe P04 telescope optics.\n")
    store, _ = init_store(tmp / "store")
    register_project(store, "p04", [project], name="P04 telescope", description="Optics of the P04 telescope",
                     approve=True)
    propose_state(store, "p04", "lap", STATE_FACT, category="decision", approve=True)
    return store.path, project


@pytest.fixture
def seeded(tmp_path):
    return seed_store(tmp_path)


@pytest.fixture
def atocore(seeded):
    store_path, project = seeded
    with atocore_serve(store_path) as srv:
        yield AtoCore(srv.url, store_path, project)


@pytest.fixture
def atocore_down(seeded):
    """AtoCore configured but not running: a loopback port nobody listens on."""
    store_path, project = seeded
    return AtoCore(f"http://127.0.0.1:{free_port()}", store_path, project)


@dataclass
class Claude:
    exe: Path
    home: Path
    env: dict
    api: FakeAnthropic
    runs: list = field(default_factory=list)

    def __call__(self, *args: str, cwd: Path, timeout: float = 120, input: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(self.exe), *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        self.runs.append(p)
        if check and p.returncode != 0:
            raise AssertionError(f"claude {' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p

    def prompt(self, text: str, cwd: Path, *extra: str, **kw) -> dict:
        """``claude -p TEXT --output-format json``: the result object."""
        p = self(*extra, "-p", text, "--output-format", "json", cwd=cwd, **kw)
        return json.loads(p.stdout.strip().splitlines()[-1])

    @property
    def config_dir(self) -> Path:
        return self.home / ".claude"

    def transcripts(self) -> list[Path]:
        return sorted((self.config_dir / "projects").rglob("*.jsonl"))


@pytest.fixture
def claude(tmp_path, api):
    exe = _tool("claude-code", "claude")
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    env = base_env(home, api)
    env["PATH"] = f"{exe.parent}{os.pathsep}{env['PATH']}"  # `claude` as the README's commands call it
    env["CLAUDE_CONFIG_DIR"] = str(home / ".claude")
    # Skip the first-run onboarding; -p sessions count the folder as trusted.
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True, "numStartups": 1}))
    return Claude(exe, home, env, api)


def wait_file(path: Path, timeout: float = 30) -> bool:
    return bool(wait_for(path.exists, timeout=timeout))


def hook_log(home: Path) -> str:
    p = home / ".atocore" / "logs" / "hook.log"
    return p.read_text() if p.exists() else ""


def now() -> float:
    return time.monotonic()
