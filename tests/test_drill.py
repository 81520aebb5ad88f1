"""The drill, from the real CLI on a real store, and what a failing step looks like."""

from __future__ import annotations

import json
import sys

from atocore.backup import drill, list_snapshots, status
from atocore.memories import add_memory, list_memories

from .conftest import run_cli

STEPS = 13


def test_drill_passes_from_the_cli_and_leaves_the_store_alone(store):
    add_memory(store, "The spectrometer slit is 50 um", "knowledge")
    head, files = store.head(), store.files()
    proc = run_cli("drill", store=store)
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("PASS ") for line in lines) == STEPS, proc.stdout
    assert not any(line.startswith(("FAIL", "SKIP")) for line in lines)
    assert lines[-1] == "drill passed"
    for step in ("write a marker memory", "marker gone from search results", "marker back in search results",
                 "verify the backup with git fsck", "recover a store from the backup"):
        assert step in proc.stdout
    # Only a scratch copy was touched: no commit, tag, memory or backup state on the real store.
    assert store.head() == head and store.files() == files
    assert list_snapshots(store) == [] and status(store)["remotes"] == []
    assert [m.text for m in list_memories(store)] == ["The spectrometer slit is 50 um"]
    report = json.loads(run_cli("drill", "--json", store=store).stdout)
    assert report["ok"] and len(report["steps"]) == STEPS and report["scratch"] is None


def test_failing_step_is_reported_and_stops_the_drill(store, monkeypatch):
    mod = sys.modules["atocore.backup.drill"] if "atocore.backup.drill" in sys.modules else None
    if mod is None:
        import importlib

        mod = importlib.import_module("atocore.backup.drill")

    def broken_restore(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mod, "restore", broken_restore)
    seen = []
    report = drill(store, on_step=seen.append)
    assert not report["ok"]
    failed = [s for s in report["steps"] if s["ok"] is False]
    assert [s["name"] for s in failed] == ["restore to before the marker"]
    assert "No space left" in failed[0]["detail"]
    assert report["steps"][-1]["name"] == "restore to before the marker"  # later steps not run
    assert [s.name for s in seen] == [s["name"] for s in report["steps"]]
