"""Push the store to a backup remote, then verify the remote really holds it.

What is pushed: ``main``, every ``review/*`` branch and every ``backup/*`` snapshot tag.
``main`` only ever fast-forwards; a remote whose main has commits this store lacks (someone
pushed there from elsewhere) is *diverged* and the push is refused, never overwritten.

Verification after the push:

* local remotes (a path or ``file://``): the remote repository is opened; its refs must equal
  ours and every object reachable from them that was not already verified by an earlier push
  is read back and re-hashed. ``deep=True`` re-checks every reachable object.
* network remotes (``ssh://``, ``git://``): the refs are listed again (ls-remote) and must
  equal ours. Object completeness rests on git's receive-pack, which checks that the new ref
  tips are fully connected before it updates a ref ("missing necessary objects" otherwise).
  ``deep=True`` fetches everything into a scratch repository and checks it object by object.

A push whose verification cannot run or does not match is reported as failed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dulwich.objects import ZERO_SHA, parse_tree
from dulwich.pack import generate_unpacked_objects
from dulwich.repo import Repo

from ..errors import AtoCoreError, Conflict, StoreError
from ..store.lock import file_lock
from ..store.objects import object_id
from ..store.repo import BACKUP_TAG_PREFIX, MAIN, REVIEW_PREFIX
from .objects import new_objects
from .remotes import Remote, resolve_remote, transport
from ..store.snapshots import snapshot
from .state import load_state, now_iso, update_remote_state

OUR_PREFIXES = (REVIEW_PREFIX, BACKUP_TAG_PREFIX)
PUSH_LOCK = "atocore-push.lock"
# A push of more objects than this (the first, full one) reuses the deltas of the store's packs
# (only those whose base is sent too, so the pack stands alone): finding them reads the packs
# whole, which a handful of new objects is not worth, but undeltified a year's store is ~12x
# larger on the remote (630 MB for 53 MB), and every later clone and pack re-hash pays for it.
REUSE_DELTAS_ABOVE = 5000
PUSH_LOCK_TIMEOUT = 60.0  # a push waits this long for one already running (as for the writer lock)
_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}


class Diverged(Conflict):
    """The remote has history this store does not: refuse rather than overwrite it."""


class VerifyFailed(StoreError):
    status_code = 502


@dataclass
class Plan:
    updates: dict[bytes, bytes] = field(default_factory=dict)   # ref -> new sha (ZERO_SHA = delete)
    foreign: list[str] = field(default_factory=list)             # remote refs left alone
    remote_before: dict[bytes, bytes] = field(default_factory=dict)


def _read_refs(store) -> tuple[str | None, dict[bytes, bytes], dict[bytes, bytes]]:
    """(main, snapshot tags, review branches) as they are now: one consistent read."""
    return (store.head(MAIN), dict(store.repo.refs.as_dict(BACKUP_TAG_PREFIX)),
            dict(store.repo.refs.as_dict(REVIEW_PREFIX)))


def backup_refs(store, current: tuple | None = None) -> tuple[dict[bytes, bytes], dict[str, str]]:
    """The refs a backup carries -- main, snapshot tags, and the review branches the gate accepts --
    and the review branches left out, with why (``{ref: first problem}``).

    A review branch is anyone's push and is not truth: one the gate refuses (a ``..`` tree
    entry, a symlink, a secret, a 100 MB file, ...) would make the backup fail ``git clone``,
    ``fsck`` or the drill, or carry a secret into every backup, so it stays local (and a copy
    pushed earlier is removed from the remote).

    ``current``: the refs as :func:`_read_refs` read them (a push reads them under the writer
    lock and runs the gate after releasing it)."""
    from ..review import gate_problems

    out: dict[bytes, bytes] = {}
    left_out: dict[str, str] = {}
    head, tags, reviews = current if current is not None else _read_refs(store)
    if head is not None:
        out[MAIN] = head.encode()
    for name, sha in tags.items():
        out[BACKUP_TAG_PREFIX + name] = sha
    for name, sha in reviews.items():
        ref = REVIEW_PREFIX + name
        try:
            # cached on disk per (head, merge bases, main's settings): a push re-checks only
            # the branches that changed since the last push or review listing
            problems = gate_problems(store, sha.decode(), head)
        except Exception as exc:  # noqa: BLE001 - unreadable: not backed up, and said so
            problems = [f"cannot be checked ({type(exc).__name__}: {exc})"]
        if problems:
            left_out[ref.decode()] = problems[0]
        else:
            out[ref] = sha
    return out, left_out


def local_refs(store) -> dict[bytes, bytes]:
    """The refs a backup carries (see :func:`backup_refs`)."""
    return backup_refs(store)[0]


def _ours(ref: bytes) -> bool:
    return ref == MAIN or ref.startswith(OUR_PREFIXES)


def _is_ancestor(store, old: bytes, new: bytes) -> bool:
    from dulwich.graph import can_fast_forward

    return can_fast_forward(store.repo, old, new)


def plan_updates(store, mine: dict[bytes, bytes], theirs: dict[bytes, bytes]) -> Plan:
    plan = Plan(remote_before=dict(theirs))
    objects = store.repo.object_store
    problems = []
    for ref, sha in mine.items():
        old = theirs.get(ref)
        if old == sha:
            continue
        if old is not None and old not in objects:
            problems.append(f"{ref.decode()} on the remote is at {old.decode()[:12]}, a commit this store does "
                            f"not have (someone pushed there from elsewhere)")
            continue
        if ref == MAIN and old is not None and not _is_ancestor(store, old, sha):
            problems.append(f"main on the remote ({old.decode()[:12]}) is not an ancestor of local main "
                            f"({sha.decode()[:12]}): pushing would drop remote history")
            continue
        plan.updates[ref] = sha
    for ref, sha in theirs.items():
        if ref in mine or not _ours(ref) or ref.endswith(b"^{}"):
            if ref not in mine and not ref.endswith(b"^{}"):
                plan.foreign.append(ref.decode())
            continue
        if ref == MAIN:
            continue  # we have no main (empty store): never delete the remote's
        if sha in objects:
            plan.updates[ref] = ZERO_SHA  # ours once: a closed review or a pruned snapshot
        else:
            plan.foreign.append(ref.decode())
    if problems:
        raise Diverged("the remote has diverged from this store; nothing was pushed:\n  - "
                       + "\n  - ".join(problems)
                       + "\nFetch and inspect the remote's history (git fetch REMOTE 'refs/*:refs/remote-copy/*'), "
                         "then reconcile by hand or push to a fresh remote. AtoCore never overwrites remote history.")
    return plan


def _hash_ok(type_num: int, raw: bytes, sha: bytes) -> bool:
    return object_id(_TYPE_NAMES[type_num], raw).encode() == sha


def _moved(new: dict[bytes, bytes], old: dict[bytes, bytes]) -> tuple[list[bytes], list[bytes]]:
    """(tips to walk, tips to stop at) for what changed from ``old`` refs to ``new`` ones: the
    refs that moved, walked down to where they (or main) were. Stopping at fewer known tips
    than all can only make the walk find more, never less; a year in, a remote holds ~150
    refs (open reviews, snapshot tags), and peeling and queueing every one of them costs more
    than the handful of new objects a push sends."""
    tips = [sha for ref, sha in new.items() if old.get(ref) != sha]
    stops = {old[ref] for ref, sha in new.items() if ref in old and old[ref] != sha}
    if MAIN in old:
        stops.add(old[MAIN])
    return tips, sorted(stops)


def _check_objects(source_store, target_store, tips: list[bytes], known: list[bytes],
                   walk: tuple[list[bytes], list[bytes]] | None = None) -> tuple[int, list[str]]:
    """Every object reachable from ``tips`` but not from ``known`` is present and intact in
    ``target_store`` (``known`` tips were verified before and are only checked to exist).
    ``walk``: the (tips, stops) of :func:`_moved`, the same objects found by a shorter walk."""
    problems = []
    known = [k for k in known if k in source_store]
    for k in known:
        if k not in target_store:
            problems.append(f"previously verified object {k.decode()} is missing on the remote")
    count = 0
    wants, haves = walk if walk is not None else (tips, known)
    for sha in new_objects(source_store, wants, [h for h in haves if h in source_store]):
        count += 1
        try:
            if not _hash_ok(*target_store.get_raw(sha), sha):
                problems.append(f"object {sha.decode()} is corrupt on the remote")
        except KeyError:
            problems.append(f"object {sha.decode()} is missing on the remote")
        except Exception as exc:  # noqa: BLE001 - a damaged pack raises zlib/checksum errors
            problems.append(f"object {sha.decode()} is corrupt on the remote (unreadable: {type(exc).__name__})")
        if len(problems) > 20:
            break
    return count, problems


def _walk_all(repo_store, tips: list[bytes]) -> tuple[int, list[str]]:
    """Connectivity + integrity of everything reachable from ``tips`` inside one store: every
    object is read once, re-hashed, and its links followed from the raw bytes."""
    problems, seen, todo = [], set(), list(tips)
    while todo and len(problems) <= 20:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        try:
            type_num, raw = repo_store.get_raw(sha)
        except KeyError:
            problems.append(f"object {sha.decode()} is missing")
            continue
        except Exception as exc:  # noqa: BLE001 - a damaged pack raises zlib/checksum errors
            problems.append(f"object {sha.decode()} is corrupt (unreadable: {type(exc).__name__}: {exc})")
            continue
        if not _hash_ok(type_num, raw, sha):
            problems.append(f"object {sha.decode()} is corrupt")
            continue
        try:  # queue only what is new: a tree names its unchanged entries again at every commit
            todo.extend(link for link in _links(type_num, raw) if link not in seen)
        except (ValueError, IndexError) as exc:
            problems.append(f"object {sha.decode()} is malformed: {exc}")
    return len(seen), problems


def _links(type_num: int, raw: bytes) -> list[bytes]:
    if type_num == 2:  # tree (gitlinks point into other repositories: not followed)
        return [sha for _name, mode, sha in parse_tree(raw, 20) if mode & 0o170000 != 0o160000]
    if type_num in (1, 4):  # commit: tree + parents; tag: object
        out = []
        for line in raw[:raw.find(b"\n\n") if b"\n\n" in raw else len(raw)].split(b"\n"):
            key, _, value = line.partition(b" ")
            if key in (b"tree", b"parent", b"object"):
                if len(value) != 40:
                    raise ValueError(f"bad {key.decode()} line")
                out.append(value)
        return out
    return []


def _remote_refs(remote: Remote) -> dict[bytes, bytes]:
    client, path = transport(remote)
    result = client.get_refs(path)
    refs = getattr(result, "refs", result)
    return {k: v for k, v in refs.items() if v is not None and k != b"HEAD" and not k.endswith(b"^{}")}


def verify(store, remote: Remote, expected: dict[bytes, bytes], known: list[bytes] | None = None,
           deep: bool = False, hashed_packs: dict | None = None,
           known_refs: dict[bytes, bytes] | None = None) -> dict:
    """Check the remote against ``expected`` refs; raise ``VerifyFailed`` with the reasons.
    ``hashed_packs``: the remote's packs an earlier verified push re-hashed (see
    :func:`_check_packs`); the report's ``packs`` is the record to keep for the next push."""
    t0 = time.perf_counter()
    problems: list[str] = []
    checked = 0
    packs_seen: dict = {}
    hashed = 0
    if remote.local_path is not None:
        try:
            repo = Repo(str(remote.local_path))
        except Exception as exc:  # noqa: BLE001 - any failure to open means "not verified"
            raise VerifyFailed(f"cannot open the remote {remote.url} to verify it: {exc}") from None
        try:
            theirs = {ref: sha for ref, sha in repo.get_refs().items() if _ours(ref)}
            problems += _compare_refs(expected, theirs)
            if not problems:
                if deep:
                    checked, more = _walk_all(repo.object_store, list(expected.values()))
                else:
                    walk = _moved(expected, known_refs) if known_refs is not None else None
                    checked, more = _check_objects(store.repo.object_store, repo.object_store,
                                                   list(expected.values()), known or [], walk)
                    # The objects not re-sent (the remote already had them) are what this push
                    # relies on: every pack is re-hashed end to end (its trailer checksum) and the
                    # tips verified earlier are read back, so a corrupted pack is caught here.
                    packs, pack_bytes, hashed, packs_seen, pack_problems = _check_packs(
                        repo.object_store, hashed_packs or {})
                    more += pack_problems + _check_tips(repo.object_store, known or [])
                problems += more
        finally:
            repo.close()
    else:
        theirs = {ref: sha for ref, sha in _remote_refs(remote).items() if _ours(ref)}
        problems += _compare_refs(expected, theirs)
        if not problems and deep:
            checked, more = _deep_network_check(remote, expected)
            problems += more
    if problems:
        raise VerifyFailed(f"the push to {remote.url} could not be verified:\n  - " + "\n  - ".join(problems[:20]))
    if deep:
        method, not_checked = " + full object walk", None
    elif remote.local_path is not None:
        method = (f" + new objects re-hashed + pack checksums ({packs} packs, {pack_bytes // 1024} KiB; "
                  f"{hashed // 1024} KiB re-hashed by this push)")
        not_checked = ("loose objects the remote already had were only checked to exist; packs re-hashed in "
                       f"the last {PACK_REHASH_HOURS} h and unchanged since (size, times, inode) were not read "
                       "again; 'atocore backup verify' reads every object")
    else:
        method = ""
        not_checked = ("objects on a network remote are not read back (git's receive-pack checked on arrival "
                       "that every new ref is complete); 'atocore backup verify' fetches and checks every object")
    return {"refs": len(expected), "objects_checked": checked, "deep": deep,
            "method": ("open repository" if remote.local_path is not None else "ls-remote") + method,
            "not_checked": not_checked, "packs": packs_seen, "rehashed_bytes": hashed, "ms": round((time.perf_counter() - t0) * 1000, 1)}


# A remote's packs are re-hashed end to end (index and trailer checksums) to catch a damaged
# backup. A year in, the remote holds hundreds of MB of packs (~0.3 s per 100 MB), read again by
# every push; but a pack never changes once written. So a pack is re-hashed when it is new, when
# its file changed in any way the filesystem records (size, mtime, ctime, inode: a rewrite, a
# copy, a replaced remote), and otherwise at most once per PACK_REHASH_HOURS; damage that leaves
# no trace in the file's metadata (bit rot) is found by the first push after that (or at once by
# ``atocore backup verify``).
PACK_REHASH_HOURS = 24


def _pack_fingerprint(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _check_packs(object_store, hashed_before: dict | None = None) -> tuple[int, int, int, dict, list[str]]:
    """Every pack of the remote: index and data checksums over the whole file (detects any
    changed byte), except packs hashed within ``PACK_REHASH_HOURS`` whose fingerprint is the one
    recorded then (``hashed_before``: ``{pack name: {"fp": [...], "at": epoch seconds}}``).
    Returns (packs, bytes, bytes re-hashed, record for the next push, problems)."""
    problems, count, size, hashed = [], 0, 0, 0
    record: dict = {}
    now = time.time()
    try:
        packs = list(object_store.packs)
    except Exception as exc:  # noqa: BLE001 - an unreadable pack folder
        return 0, 0, 0, {}, [f"the remote's packs cannot be listed ({type(exc).__name__}: {exc})"]
    for pack in packs:
        count += 1
        name = os.path.basename(str(getattr(pack, "_basename", "a pack")))
        try:
            fp = _pack_fingerprint(pack._data_path) + _pack_fingerprint(pack._idx_path)
            size += fp[0]
            prev = (hashed_before or {}).get(name)
            if (isinstance(prev, dict) and prev.get("fp") == fp and isinstance(prev.get("at"), (int, float))
                    and 0 <= now - prev["at"] < PACK_REHASH_HOURS * 3600):
                record[name] = prev
                continue
            pack.index.check()
            pack.data.check()
            pack.check_length_and_checksum()
            hashed += fp[0]
            record[name] = {"fp": fp, "at": now}
        except Exception as exc:  # noqa: BLE001 - ChecksumMismatch, zlib, truncated files...
            problems.append(f"pack {name} on the remote is corrupt "
                            f"({type(exc).__name__}: {str(exc)[:120]}); push to a fresh remote, then replace this one")
    return count, size, hashed, record, problems


def _check_tips(object_store, known: list[bytes]) -> list[str]:
    problems = []
    for sha in known:
        try:
            if not _hash_ok(*object_store.get_raw(sha), sha):
                problems.append(f"object {sha.decode()} is corrupt on the remote")
        except KeyError:
            pass  # reported by _check_objects
        except Exception as exc:  # noqa: BLE001
            problems.append(f"object {sha.decode()} is corrupt on the remote (unreadable: {type(exc).__name__})")
    return problems


def _compare_refs(expected: dict[bytes, bytes], theirs: dict[bytes, bytes]) -> list[str]:
    problems = []
    for ref, sha in expected.items():
        got = theirs.get(ref)
        if got != sha:
            problems.append(f"{ref.decode()}: remote has {got.decode()[:12] if got else 'nothing'}, "
                            f"expected {sha.decode()[:12]}")
    return problems


def _deep_network_check(remote: Remote, expected: dict[bytes, bytes]) -> tuple[int, list[str]]:
    tmp = Path(tempfile.mkdtemp(prefix="atocore-verify-"))
    try:
        scratch = Repo.init_bare(str(tmp))
        client, path = transport(remote)
        client.fetch(path, scratch, determine_wants=lambda refs, depth=None: sorted(set(expected.values())))
        count, problems = _walk_all(scratch.object_store, list(expected.values()))
        scratch.close()
        return count, problems
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_local_pack(objects_dir: Path, objects, ids: list[bytes]) -> None:
    """Write ``ids`` as one new pack (and its index) into a local remote's ``objects/pack``.

    What dulwich's ``add_pack_data`` does, minus its duplicate-pack check, which hashes the object
    names of every pack the remote holds (~0.5 s per push on a year-old backup). The pack is
    written and fsynced under a temporary name, then renamed; its index goes last, so a reader
    never sees a pack without its objects, and a crash leaves at worst an unreferenced
    temporary file. Named as dulwich names packs (the SHA-1 over its sorted object names)."""
    from dulwich.pack import iter_sha1, write_pack_data, write_pack_index

    pack_dir = objects_dir / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=pack_dir, prefix="tmp_pack_atocore_")
    tmp = Path(tmp_name)
    tmp_idx = tmp.with_name(tmp.name + ".idx")
    try:
        with os.fdopen(fd, "wb") as f:
            records = generate_unpacked_objects(objects, [(i, None) for i in ids], deltify=False,
                                                reuse_deltas=len(ids) > REUSE_DELTAS_ABOVE, ofs_delta=True)
            entries, checksum = write_pack_data(f.write, records, object_format=objects.object_format,
                                                num_records=len(ids))
            f.flush()
            os.fsync(f.fileno())
        rows = sorted((sha, offset, crc) for sha, (offset, crc) in entries.items())
        base = pack_dir / f"pack-{iter_sha1(r[0] for r in rows).decode()}"
        with open(tmp_idx, "wb") as f:
            write_pack_index(f, rows, checksum, version=2)
            f.flush()
            os.fsync(f.fileno())
        for path in (tmp, tmp_idx):
            os.chmod(path, 0o444)
        os.replace(tmp, base.with_name(base.name + ".pack"))
        os.replace(tmp_idx, base.with_name(base.name + ".idx"))
        dir_fd = os.open(pack_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_idx.unlink(missing_ok=True)


def _fix_local_head(remote: Remote) -> None:
    """A bare repo made by ``git init --bare`` points HEAD at master; point it at main so a
    plain ``git clone`` of the backup checks main out."""
    try:
        repo = Repo(str(remote.local_path))
    except Exception:  # noqa: BLE001
        return
    try:
        target = repo.refs.get_symrefs().get(b"HEAD")
        if target != MAIN and (target is None or target not in repo.refs) and MAIN in repo.refs:
            repo.refs.set_symbolic_ref(b"HEAD", MAIN)
    finally:
        repo.close()


def _create_local(remote: Remote) -> None:
    p = remote.local_path
    assert p is not None
    if p.exists() and any(p.iterdir()):
        return
    p.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(p))
    repo.refs.set_symbolic_ref(b"HEAD", MAIN)
    repo.close()


def push_one(store, remote: Remote, deep: bool = False, create: bool = False, take_snapshot: bool = True) -> dict:
    """Push to one remote and verify; returns a report (``ok`` False on any failure)."""
    t0 = time.perf_counter()
    report: dict = {"remote": remote.name, "url": remote.url, "kind": remote.kind, "ok": False,
                    "time": now_iso(), "snapshot": None, "updated": [], "deleted": [], "foreign": []}
    key = remote.name
    plans: list[Plan] = []
    try:
        if remote.local_path is not None:
            if create:
                _create_local(remote)
            elif not (remote.local_path / "objects").is_dir():
                raise StoreError(f"no git repository at {remote.local_path}; create the backup repository with "
                                 f"'git init --bare {remote.local_path}' (or pass --create)")
        # The writer lock only covers the snapshot and reading the refs: objects never change,
        # so the transfer and verification run without it and a slow or hung remote never
        # blocks writers. Pushes from this store still run one at a time (their own lock).
        with file_lock(Path(store.path) / PUSH_LOCK, timeout=PUSH_LOCK_TIMEOUT, what="the backup push of this store"):
            with store.lock():
                if take_snapshot and store.head() is not None:
                    report["snapshot"] = snapshot(store, f"push to {remote.name}")
                current = _read_refs(store)
            # the gate (cached per branch) runs without the writer lock: objects never change
            mine, left_out = backup_refs(store, current)
            report["left_out"] = left_out
            if MAIN not in mine:
                raise StoreError("the store has no main branch; nothing to back up")
            prev_state = load_state(store)["remotes"].get(key, {})
            prev = prev_state.get("verified_refs") or {}
            known = [v.encode() for v in prev.values()]
            client, path = transport(remote)

            def update_refs(theirs):
                theirs = {k: v for k, v in theirs.items() if v is not None and k != b"HEAD"}
                plan = plan_updates(store, mine, theirs)
                plans.append(plan)
                return dict(plan.updates)

            objects = store.repo.object_store

            def generate_pack_data(have, want, ofs_delta=True, progress=None):
                if plans:  # stop at where the moving refs (and main) were, not at all ~150 remote refs
                    theirs = plans[-1].remote_before
                    have = _moved({r: s for r, s in plans[-1].updates.items() if s != ZERO_SHA}, theirs)[1]
                ids = new_objects(objects, want, have)
                if remote.local_path is not None and ids:
                    # written into the remote here (complete and synced before any ref moves);
                    # dulwich's own pack writer re-reads every pack index of the remote first
                    _write_local_pack(remote.local_path / "objects", objects, ids)
                    return 0, iter(())
                # No delta search or reuse: it scans whole packs; a backup push is a few objects.
                return len(ids), generate_unpacked_objects(objects, [(i, None) for i in ids], deltify=False,
                                                           reuse_deltas=len(ids) > REUSE_DELTAS_ABOVE,
                                                           ofs_delta=ofs_delta, progress=progress)

            result = client.send_pack(path, update_refs, generate_pack_data)
            plan = plans[-1] if plans else Plan()
            errors = {k.decode(): v for k, v in (getattr(result, "ref_status", None) or {}).items() if v}
            if errors:
                raise StoreError(f"the remote {remote.url} refused some refs: "
                                 + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            report["updated"] = sorted(r.decode() for r, s in plan.updates.items() if s != ZERO_SHA)
            report["deleted"] = sorted(r.decode() for r, s in plan.updates.items() if s == ZERO_SHA)
            report["foreign"] = sorted(plan.foreign)
            if remote.local_path is not None:
                _fix_local_head(remote)
            # Trust an earlier verification only for tips the remote still advertised before
            # this push: a remote replaced by an empty repository gets everything re-checked.
            still_there = set(plan.remote_before.values())
            known = [k for k in known if k in still_there]
            known_refs = {r.encode(): v.encode() for r, v in prev.items() if v.encode() in still_there}
            hashed_packs = prev_state.get("hashed_packs") if prev_state.get("url") == remote.url else None
            report["verify"] = verify(store, remote, mine, known=known, deep=deep,
                                      hashed_packs=hashed_packs if isinstance(hashed_packs, dict) else None,
                                      known_refs=known_refs)
            report["main"] = mine[MAIN].decode()
            fields = dict(url=remote.url, last_attempt=report["time"], last_ok=True, last_error=None,
                          last_verified=report["time"], verified_main=report["main"],
                          verified_refs={k.decode(): v.decode() for k, v in mine.items()},
                          hashed_packs=report["verify"].pop("packs"))
            if deep:
                fields["last_deep_verified"] = report["time"]
            update_remote_state(store, key, **fields)
            report["ok"] = True
            report["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    except Exception as exc:  # every failure becomes a report the operator can act on
        report["error"] = _describe(exc, remote, connected=bool(plans))
        report["error_kind"] = "diverged" if isinstance(exc, Diverged) else (
            "unverified" if isinstance(exc, VerifyFailed) else type(exc).__name__)
        report["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        try:
            # a failed push trusts no earlier pack hashes: the next one reads every pack again
            update_remote_state(store, key, url=remote.url, last_attempt=report["time"], last_ok=False,
                                last_error=report["error"], hashed_packs={})
        except Exception:  # noqa: BLE001 - the report already says what failed
            pass
    return report


def _describe(exc: BaseException, remote: Remote, connected: bool = False) -> str:
    import errno

    from dulwich.errors import HangupException

    if isinstance(exc, AtoCoreError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return (f"the push to {remote.url} failed: no space left to write the objects ({exc.strerror}). "
                "Nothing on the remote moved; free space there and push again.")
    if connected and isinstance(exc, (ConnectionError, HangupException, EOFError)):
        return (f"the connection to {remote.url} was lost during the push ({type(exc).__name__}: {exc}); "
                "the remote keeps its old refs (a ref only moves once its objects are complete). "
                "Push again once it is reachable; if this repeats, check the remote's free disk space and its logs.")
    if isinstance(exc, ConnectionError) or isinstance(exc, OSError) and exc.errno in (
            errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT):
        return f"the remote {remote.url} is unreachable ({exc}); nothing was pushed. Check that it is up and try again."
    if isinstance(exc, HangupException):
        return (f"the remote {remote.url} hung up during the push ({exc}); the remote keeps its old state or "
                "the new one, never half a ref. Push again once it is reachable.")
    return f"the push to {remote.url} failed: {type(exc).__name__}: {exc}"


def push(store, remote: str | None = None, deep: bool = False, create: bool = False) -> dict:
    """``POST /admin/backup`` and ``atocore backup push``: push to one or every configured remote.

    Returns ``{"ok": bool, "results": [per-remote report], "snapshot": tag}``; never raises for
    a failed push (the report says why), only for bad input (unknown remote name).
    """
    remotes = resolve_remote(store, remote)
    results = [push_one(store, r, deep=deep, create=create) for r in remotes]
    return {"ok": all(r["ok"] for r in results), "results": results,
            "snapshot": next((r["snapshot"] for r in results if r.get("snapshot")), None)}


def verify_remote(store, remote: str | None = None, deep: bool = True) -> dict:
    """Verify without pushing: does each remote hold exactly what was last verified as pushed,
    and does it match the store now?"""
    out = []
    for r in resolve_remote(store, remote):
        entry: dict = {"remote": r.name, "url": r.url, "ok": False}
        try:
            mine = local_refs(store)
            entry["verify"] = verify(store, r, mine, deep=deep)
            entry["verify"].pop("packs", None)
            entry["ok"] = True
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            entry["error"] = _describe(exc, r)
        out.append(entry)
    return {"ok": all(e["ok"] for e in out), "results": out}
