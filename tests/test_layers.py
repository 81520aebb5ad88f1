"""The import structure runs one way: a lower layer never imports a higher one (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HIGHER = ("atocore.projects", "atocore.context", "atocore.api", "atocore.server", "atocore.mcp", "atocore.ui",
          "atocore.capture", "atocore.cli")


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["atocore.store.head", "atocore.retrieval.retriever", "atocore.retrieval.lifecycle",
                                    "atocore.retrieval.indexing"])
def test_the_store_and_retrieval_import_nothing_above_them(module):
    above = sorted(m for m in imported_by(module) if m.startswith(HIGHER))
    assert above == []


def test_the_query_layer_is_below_its_callers():
    above = sorted(m for m in imported_by("atocore.api") if m.startswith(("atocore.server", "atocore.mcp",
                                                                          "atocore.ui", "atocore.cli")))
    assert above == []
