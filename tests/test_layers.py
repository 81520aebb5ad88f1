"""The import structure runs one way: a lower layer never imports a higher one (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# --------------------------------------------------------------------------- every import, lazy ones included

# The floors of docs/architecture.md, lowest first. A module may import its own floor or lower ones; the
# plugin manager is on the floor and reaches the plugins by name (importlib), so calls go up only through hooks.
FLOORS: list[tuple[str, ...]] = [
    ("errors", "ids", "config", "text", "redact", "hookspecs", "plugins", "evaluation"),
    ("records", "store"),
    ("gate", "review", "memories", "state"),
    ("retrieval",),
    ("projects",),
    ("context",),
    ("capture", "backup"),
    ("api",),
    ("golden", "mcp", "ui"),
    ("server",),
    ("cli", "default_plugins", "__main__"),
]
FLOOR_OF = {area: i for i, areas in enumerate(FLOORS) for area in areas}
PACKAGE = Path(__file__).resolve().parents[1] / "atocore"


def _area(module: str) -> str:
    return module.split(".")[1]


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                targets = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # from . import x: each name is a module of the package
                    targets = [f"{targets[0]}.{a.name}" for a in node.names]
            else:
                targets = [node.module or ""]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, t) for t in targets if t.startswith("atocore.")]
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if len(parts) > 1:
            yield path, ".".join(parts)


def test_every_area_has_a_floor():
    areas = {_area(m) for _p, m in _modules()}
    assert sorted(areas - FLOOR_OF.keys()) == [], "add the new area to FLOORS (and to docs/architecture.md)"


def test_no_import_runs_up_the_floors():
    upward = []
    areas = {_area(m) for _p, m in _modules()}
    for path, module in _modules():
        mine = FLOOR_OF.get(_area(module), len(FLOORS))
        for line, target in _imports(path, module):
            if _area(target) not in areas:  # a name of the package itself (``from atocore import __version__``)
                continue
            theirs = FLOOR_OF[_area(target)]
            if theirs > mine:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} {module} -> {target}")
    assert upward == []
