"""Gate benchmark: what the gate costs on ordinary proposals and how fast it refuses hostile ones.

Prints figures (not a test):

* ``review list`` with N open one-commit proposals (state edits), and one 20-commit branch;
* refusing a branch with a 100 MB file (time and peak memory: the file must not be read);
* refusing a refresh of a source root of ``/`` (the entry cap stops the walk).

    .venv/bin/python bench/gate.py [--reviews 50] [--big-mb 100]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atocore.errors import ValidationError  # noqa: E402
from atocore.projects import refresh, register_project  # noqa: E402
from atocore.review import get_review, list_reviews, propose  # noqa: E402
from atocore.store import init_store  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def git(*args: str, cwd: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "B", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "B",
           "GIT_COMMITTER_EMAIL": "b@x", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reviews", type=int, default=50)
    ap.add_argument("--big-mb", type=int, default=100)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atocore-bench-gate-"))
    store, _ = init_store(tmp / "store")
    for i in range(args.reviews):
        propose(store, {f"sources/p/note{i}.md": f"# Note {i}\n\nThe lens mount is torqued to {i} Nm.\n".encode()},
                f"Note {i}")
    t0 = time.perf_counter()
    listed = list_reviews(store)
    dt = time.perf_counter() - t0
    print(f"review list, {len(listed)} one-commit proposals: {dt * 1000:.0f} ms "
          f"({dt * 1000 / max(len(listed), 1):.1f} ms each), all approvable: {all(p.approvable for p in listed)}")

    clone = tmp / "clone"
    git("clone", "-q", str(store.path), str(clone), cwd=tmp)
    git("checkout", "-q", "-b", "review/long", cwd=clone)
    (clone / "sources" / "q").mkdir(parents=True)
    for i in range(20):
        (clone / "sources" / "q" / f"f{i}.md").write_text(f"file {i}\n" * 200)
        git("add", "-A", cwd=clone)
        git("commit", "-q", "-m", f"step {i}", cwd=clone)
    git("push", "-q", "origin", "review/long", cwd=clone)
    t0 = time.perf_counter()
    p = get_review(store, "long")
    print(f"review show, 20-commit branch: {(time.perf_counter() - t0) * 1000:.0f} ms, approvable: {p.approvable}")

    git("checkout", "-q", "-b", "review/big", "main", cwd=clone)
    (clone / "sources" / "q").mkdir(parents=True, exist_ok=True)
    with open(clone / "sources" / "q" / "big.md", "wb") as fh:
        line = b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n"
        for _ in range(args.big_mb * 1024 * 1024 // len(line)):
            fh.write(line)
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "big", cwd=clone)
    git("push", "-q", "origin", "review/big", cwd=clone)
    before = rss_mb()
    t0 = time.perf_counter()
    p = get_review(store, "big")
    dt = time.perf_counter() - t0
    print(f"review show, {args.big_mb} MB file: refused in {dt * 1000:.0f} ms, peak RSS {before:.0f} -> {rss_mb():.0f} MB"
          f" ({p.problems[0][:70]}...)")

    register_project(store, "everything", ["/"], approve=True)
    t0 = time.perf_counter()
    try:
        refresh(store, "everything")
        print("refresh of / was NOT refused")
    except ValidationError as exc:
        print(f"refresh of /: refused in {(time.perf_counter() - t0) * 1000:.0f} ms ({str(exc)[:80]}...)")


if __name__ == "__main__":
    main()
