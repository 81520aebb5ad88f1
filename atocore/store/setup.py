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


MARKER_SECTION = b"atocore"
MARKER_KEY = b"store"


def is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def has_marker(path: Path) -> bool:
    """``atocore.store = true`` in the repository's own ``config`` (written by ``init``)."""
    try:
        from dulwich.config import ConfigFile

        return ConfigFile.from_path(str(path / "config")).get_boolean((MARKER_SECTION,), MARKER_KEY, False)
    except (OSError, ValueError, KeyError):
        return False


def write_marker(path: Path) -> None:
    from dulwich.config import ConfigFile

    cfg = ConfigFile.from_path(str(path / "config"))
    cfg.set((MARKER_SECTION,), MARKER_KEY, True)
    cfg.write_to_path(str(path / "config"))


def _made_by_atocore(store: Store) -> bool:
    """A store made before the marker existed: main holds an ``atocore.yaml`` mapping with ``schema``."""
    try:
        raw = store.read("atocore.yaml") if store.head() else None
        if raw is None:
            return False
        import yaml

        data = yaml.safe_load(raw)
        return isinstance(data, dict) and "schema" in data
    except Exception:  # noqa: BLE001 - anything unreadable is not recognisably ours
        return False


def _foreign(p: Path) -> StoreError:
    return StoreError(f"{p} is a git repository that AtoCore did not create (no 'atocore.store' marker in its "
                      "config and no atocore.yaml on main); AtoCore will not write into it. Point --store at a "
                      "store made by 'atocore init PATH', or create one in an empty folder")


def check_marker(store: Store) -> Store:
    """Refuse a repository AtoCore did not create; give a store from before the marker its marker."""
    if has_marker(store.path):
        return store
    if not _made_by_atocore(store):
        raise _foreign(store.path)
    try:
        write_marker(store.path)  # migrate; a read-only store simply stays unmarked
    except OSError:
        pass
    return store


def is_store(path: Path) -> bool:
    return is_git_dir(path) and has_marker(path)


def init_store(path: str | os.PathLike[str], author: str | None = None) -> tuple[Store, bool]:
    """Create a store at ``path`` (returns ``(store, created)``); an existing store is opened."""
    p = Path(path).expanduser().resolve()
    if p.exists() and not p.is_dir():
        raise StoreError(f"{p} exists and is not a directory")
    if p.is_dir() and any(p.iterdir()):
        if not is_git_dir(p):
            raise StoreError(f"{p} is not empty and is not an AtoCore store; choose an empty or new directory")
        store = check_marker(Store(p))
        if store.head() is None:  # interrupted between creating the repository and its first commit
            store.commit(template_files(), "Create AtoCore store\n\nFrom the store template.", author=author)
            return store, True
        return store, False
    p.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(p))
    repo.refs.set_symbolic_ref(b"HEAD", MAIN)
    repo.close()
    write_marker(p)
    ensure_fanout(p / "objects")
    store = Store(p)
    store.commit(template_files(), "Create AtoCore store\n\nFrom the store template.", author=author)
    return store, True


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``path`` or ``$ATOCORE_STORE`` (refusing a repository AtoCore did not create)."""
    target = path or os.environ.get("ATOCORE_STORE")
    if not target:
        raise StoreError("no store given: pass --store PATH or set ATOCORE_STORE")
    p = Path(target).expanduser()
    if not p.exists():
        raise StoreError(f"no store at {p}; create one with 'atocore init {p}'")
    return check_marker(Store(p))
