"""Version and build identity for /health: env overrides, else the checkout the code runs from."""

from __future__ import annotations

import datetime as _dt
import os
from functools import lru_cache
from pathlib import Path

from .. import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def build_info() -> dict[str, str]:
    info = {"version": __version__, "build_sha": "unknown", "build_time": "unknown", "build_branch": "unknown"}
    try:
        from dulwich.repo import Repo

        repo = Repo(str(REPO_ROOT))
        head = repo.head()
        commit = repo[head]
        info["build_sha"] = head.decode()
        info["build_time"] = _dt.datetime.fromtimestamp(commit.commit_time, _dt.timezone.utc).isoformat().replace(
            "+00:00", "Z")
        target = repo.refs.read_ref(b"HEAD") or b""
        if target.startswith(b"ref: refs/heads/"):
            info["build_branch"] = target[len(b"ref: refs/heads/"):].decode()
        else:
            info["build_branch"] = "detached"
    except Exception:  # not a checkout (an installed wheel): keep "unknown" unless the env says
        pass
    for key in ("build_sha", "build_time", "build_branch"):
        env = os.environ.get(f"ATOCORE_{key.upper()}")
        if env:
            info[key] = env
    return info
