"""Creating and opening stores."""

from __future__ import annotations

import os
from pathlib import Path

from dulwich.repo import Repo

from ..errors import StoreError
from .objects import ensure_fanout
from .repo import MAIN, Store

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "store-template"


def template_files(template: Path = TEMPLATE_DIR) -> dict[str, bytes]:
    if not template.is_dir():
        raise StoreError(f"store template not found at {template}")
    return {p.relative_to(template).as_posix(): p.read_bytes()
            for p in sorted(template.rglob("*")) if p.is_file()}


def is_store(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def init_store(path: str | os.PathLike[str], author: str | None = None) -> tuple[Store, bool]:
    """Create a store at ``path`` (returns ``(store, created)``); an existing store is opened."""
    p = Path(path).expanduser().resolve()
    if p.exists() and not p.is_dir():
        raise StoreError(f"{p} exists and is not a directory")
    if p.is_dir() and any(p.iterdir()):
        if is_store(p):
            return Store(p), False
        raise StoreError(f"{p} is not empty and is not an AtoCore store; choose an empty or new directory")
    p.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(p))
    repo.refs.set_symbolic_ref(b"HEAD", MAIN)
    repo.close()
    ensure_fanout(p / "objects")
    store = Store(p)
    store.commit(template_files(), "Create AtoCore store\n\nFrom the store template.", author=author)
    return store, True


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``path`` or ``$ATOCORE_STORE``."""
    target = path or os.environ.get("ATOCORE_STORE")
    if not target:
        raise StoreError("no store given: pass --store PATH or set ATOCORE_STORE")
    p = Path(target).expanduser()
    if not p.exists():
        raise StoreError(f"no store at {p}; create one with 'atocore init {p}'")
    return Store(p)
