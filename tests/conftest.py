"""Shared fixtures: a real store on disk, the real embedding model, the real CLI.

Area-specific fixtures live in ``tests/fixtures_<area>.py`` and are imported by the test
modules that need them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from atocore.store import init_store

REPO_ROOT = Path(__file__).resolve().parents[1]
# The stand-in model2vec model shipped beside the project (see its PROVENANCE.md).
DEFAULT_TEST_MODEL = REPO_ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"


@pytest.fixture(scope="session")
def model_path() -> str:
    path = Path(os.environ.get("ATOCORE_TEST_MODEL", DEFAULT_TEST_MODEL))
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"test embedding model not found at {path}; set ATOCORE_TEST_MODEL to a model2vec folder")
    return str(path)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path, model_path):
    """No test reads the developer's real store, token or model settings."""
    for var in ("ATOCORE_STORE", "ATOCORE_URL", "ATOCORE_TOKEN", "ATOCORE_AUTHOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", model_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ATOCORE_HOME", str(tmp_path / "atocore-home"))


@pytest.fixture
def store(tmp_path):
    s, _ = init_store(tmp_path / "store")
    return s


def run_cli(*args: str, store=None, input: str | None = None, env: dict | None = None,
            check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``atocore`` command in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["ATOCORE_STORE"] = str(getattr(store, "path", store))
    proc = subprocess.run([sys.executable, "-m", "atocore", *args], input=input, capture_output=True,
                          text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"atocore {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
