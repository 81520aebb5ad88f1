"""Recovery: make a store from nothing but a backup remote (``atocore init PATH --from URL``).

A writer only: the indexes are rebuilt afterwards by the CLI's step after its own write
(:mod:`atocore.cli.follow`) or by the service that opens the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from dulwich.repo import Repo

from ..errors import StoreError
from ..store.repo import MAIN
from .push import _walk_all
from .remotes import make_remote, transport
from .state import now_iso, update_remote_state

CLONED_PREFIXES = (b"refs/heads/", b"refs/tags/")


def _copy_objects(src: Path, dst: Path) -> None:
    for sub in sorted(src.iterdir()):
        if sub.is_dir() and (len(sub.name) == 2 or sub.name == "pack"):
            (dst / sub.name).mkdir(exist_ok=True)
            for f in sub.iterdir():
                # skip temporary files of an interrupted write (tmp*, incoming-*)
                if f.is_file() and not f.name.startswith(("tmp", "incoming")):
                    shutil.copy2(f, dst / sub.name / f.name)


def _fsck(path: Path, tips: list[bytes]) -> bool:
    """True if the real git CLI checked this repository and found it whole: ``git fsck``
    re-hashes every object (packed and loose) and proves everything reachable from ``tips``
    is present, in C and in another process (at a year's 230,000 objects: ~15 s, against
    ~30 s for the walk in Python). False if git is missing or found anything at all: then
    the Python walk gives the verdict and names the damage, so git can only make a good
    recovery faster, never a bad one pass."""
    git = shutil.which("git")
    if git is None or not tips or len(tips) > 10_000:  # (more refs than a command line holds)
        return False
    # Only this repository's own objects and checks count: no environment or user config
    # (alternates, replace refs, fsck.<msg>=ignore, a skip list) may weaken the check.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_NO_REPLACE_OBJECTS="1")
    try:
        proc = subprocess.run([git, "--git-dir", str(path), "fsck", "--no-dangling", "--no-reflogs",
                               "--no-progress", *(t.decode() for t in tips)],
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def init_from(url: str, path, verify: bool = True):
    """Clone the backup at ``url`` (all branches and tags) into a new store at ``path`` and
    check every object reachable from them. Returns the ``Store``.

    ``path`` must be new or an empty directory; on failure nothing is left behind there.
    """
    from ..store import Store

    p = Path(path).expanduser().resolve()
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise StoreError(f"{p} is not empty; recover into a new or empty directory")
    made = not p.exists()
    remote = make_remote(url, url)
    t0 = time.perf_counter()
    try:
        p.mkdir(parents=True, exist_ok=True)
        repo = Repo.init_bare(str(p))
        client, rpath = transport(remote)

        def wants(refs, depth=None):
            return sorted({sha for ref, sha in refs.items()
                           if sha and ref.startswith(CLONED_PREFIXES) and not ref.endswith(b"^{}")
                           and sha not in repo.object_store})

        if remote.local_path is not None and (remote.local_path / "objects").is_dir():
            # A repository on this machine: copy its object files, as ``git clone --local``
            # does (the walk below still proves every needed object is there and intact).
            src = Repo(str(remote.local_path))
            try:
                advertised = src.get_refs()
            finally:
                src.close()
            _copy_objects(remote.local_path / "objects", p / "objects")
        else:
            advertised = client.fetch(rpath, repo, determine_wants=wants).refs
        refs = {ref: sha for ref, sha in advertised.items()
                if sha and ref.startswith(CLONED_PREFIXES) and not ref.endswith(b"^{}")}
        if MAIN not in refs:
            raise StoreError(f"{url} has no main branch: is it an AtoCore backup? (refs: "
                             f"{', '.join(sorted(r.decode() for r in refs)) or 'none'})")
        if verify and not _fsck(p, sorted(set(refs.values()))):
            _count, problems = _walk_all(repo.object_store, sorted(set(refs.values())))
            if problems:
                raise StoreError(f"the backup at {url} is incomplete or corrupt: " + "; ".join(problems[:5]))
        for ref, sha in refs.items():
            repo.refs[ref] = sha
        repo.refs.set_symbolic_ref(b"HEAD", MAIN)
        repo.close()
        store = Store(p)
        if store.read("atocore.yaml") is None:
            raise StoreError(f"{url} main has no atocore.yaml: it is a git repository but not an AtoCore store")
        # The source is where this store came from: remember it as verified, so a push back is a fast-forward.
        update_remote_state(store, url, url=url, last_verified=now_iso(), last_ok=True, last_error=None,
                            verified_main=refs[MAIN].decode(), recovered_from=True,
                            verified_refs={k.decode(): v.decode() for k, v in refs.items()})
        store.recovery = {"refs": len(refs), "clone_seconds": round(time.perf_counter() - t0, 3)}
    except BaseException:
        if made:
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_dir():
            for child in p.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        raise
    return store
