"""The shortcuts of the context path and the service start answer exactly what the long way did
(issue 14, speed): term sets, document frequencies, vector lookups, the last-build writer's
redaction patterns, one write per response, and the work deferred until after the start."""

from __future__ import annotations

import asyncio
import random
import string
import threading
import time

import numpy as np
import pytest

from atocore.retrieval import index as ix
from atocore.retrieval import open_retriever
from atocore.server.run import CoalescingTransport
from tests.fixtures_server import serve_store, two_projects  # noqa: F401


# --------------------------------------------------------------------------- retrieval


def test_term_set_equals_the_analyzer_on_any_text():
    an = ix._analyzer()
    rng = random.Random(14)
    alphabet = string.printable + "éßİΩ–…ǅ"
    texts = ["", "Lens mount torque: 12 Nm (M4) — see rev-B", "a" * 45 + " b", "running runs ran"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(400)]
    for t in texts:
        assert ix.term_set(t) == set(an.analyze(t)), t
        assert ix.term_set(t) == set(an.analyze(t)), t  # the remembered answer too


def test_term_set_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(ix, "_TERMS", {})
    monkeypatch.setattr(ix, "_TERMS_MAX", 8)
    for i in range(50):
        assert ix.term_set(f"word{i} shared") == {f"word{i}", "share"}
    assert len(ix._TERMS) <= 8 and "word49 shared" in ix._TERMS


def test_document_frequencies_follow_an_update(two_projects):  # noqa: F811
    """A remembered document frequency belongs to one searcher: after main moves and the index
    follows, the new word is known and a removed one is not."""
    store = two_projects
    r = open_retriever(store)
    gen = r._fresh()
    assert not gen.has_term("zyzzogeton") and gen.doc_freq("body", "zyzzogeton") == 0
    store.commit({"sources/p04/new.md": b"# New\n\nThe zyzzogeton bracket holds the fold mirror.\n"}, "add a doc")
    r.update()
    gen = r._fresh()
    assert gen.has_term("zyzzogeton") and gen.doc_freq("body", "zyzzogeton") == 1
    assert r.search("zyzzogeton bracket", k=3)[0].source.endswith("new.md")
    store.commit({"sources/p04/new.md": None}, "remove it")
    r.update()
    assert not r._fresh().has_term("zyzzogeton")


def test_vectors_of_equals_usearch_get(two_projects):  # noqa: F811
    r = open_retriever(two_projects)
    gen = r._fresh()
    keys = sorted(gen.keymap)
    rng = random.Random(3)
    for n in (1, 2, 7, len(keys)):
        pick = rng.sample(keys, min(n, len(keys)))
        want = np.asarray(gen.vectors.get(np.asarray(pick, dtype=np.uint64)), dtype=np.float32).reshape(len(pick), -1)
        got = gen.vectors_of(pick)
        assert got.dtype == np.float32 and got.shape == want.shape and (got == want).all()


def test_open_early_opens_the_index_and_loads_the_model(two_projects):  # noqa: F811
    r = open_retriever(two_projects)
    r._opened = False  # as a new process finds it
    r._gen = None
    for t in r.open_early():
        t.join(60)
    assert r._opened and r._gen is not None
    assert r.status()["degraded"] is False and r._embedder is not None and r._embedder._table is not None
    assert r.search("lap diameter", k=1)


# --------------------------------------------------------------------------- HTTP


class _Recorder:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data):
        self.writes.append(bytes(data))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True

    def get_write_buffer_size(self):
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_writes_of_one_loop_turn_leave_together():
    async def main():
        raw = _Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(memoryview(b"body"))
        assert raw.writes == [] and t.get_write_buffer_size() == 23
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"event 1")  # a streaming response: each turn's writes go out in that turn
        await asyncio.sleep(0)
        t.write(b"event 2")
        t.close()  # close sends what is pending first
        assert raw.writes[1:] == [b"event 1", b"event 2"] and raw.closed
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        raw2 = _Recorder()
        t2 = CoalescingTransport(raw2, asyncio.get_running_loop())
        t2.write(b"never sent")
        t2.abort()
        await asyncio.sleep(0)
        assert raw2.writes == [] and raw2.closed

    asyncio.run(main())


def test_one_response_arrives_in_one_segment(two_projects):  # noqa: F811
    """Over real uvicorn: the status line, headers and the body of a context build come in one
    read (uvicorn alone sends the headers and the body separately)."""
    import socket

    with serve_store(two_projects) as s:
        port = int(s.url.rsplit(":", 1)[1])
        body = b'{"prompt": "lap diameter", "project": "p04"}'
        req = (b"POST /context/build HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
               b"content-length: %d\r\n\r\n%s" % (len(body), body))
        with socket.create_connection(("127.0.0.1", port)) as sock:
            for _ in range(5):
                sock.sendall(req)
                first = sock.recv(1 << 20)
                head, _, rest = first.partition(b"\r\n\r\n")
                length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                             .split(b":")[1])
                assert len(rest) == length, (len(rest), length)


# --------------------------------------------------------------------------- the service


def test_after_start_runs_once_the_watcher_has_caught_up(two_projects):  # noqa: F811
    from atocore.server.service import Service

    svc = Service(str(two_projects.path), hold_lock=False)
    ran: list[tuple[str, str | None]] = []
    done = threading.Event()

    def first():
        ran.append(("first", svc._indexed_head))

    def second():
        ran.append(("second", svc._indexed_head))
        done.set()

    svc.after_start(first)
    svc.after_start(second)
    time.sleep(0.05)
    assert ran == []  # not before the service starts
    svc.start()
    try:
        assert done.wait(30)
        assert ran == [("first", two_projects.head()), ("second", two_projects.head())]
        late = threading.Event()
        svc.after_start(late.set)  # after the start: at once
        assert late.wait(10)
    finally:
        svc.stop()


def test_last_build_follows_a_new_redaction_pattern(two_projects):  # noqa: F811
    """The writer's redaction patterns are read once per version of atocore.yaml: a pattern added
    on main applies to the next build written."""
    from atocore.context.build import last_build_path

    store = two_projects
    path = last_build_path(store)

    with serve_store(store) as s, s.client() as c:
        assert c.post("/context/build", json={"prompt": "lap diameter for ACME-12345"}).status_code == 200
        deadline = time.monotonic() + 10
        while not (path.exists() and "ACME-12345" in path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "ACME-12345" in path.read_text()  # no pattern for it yet
        cfg = store.read("atocore.yaml").decode().replace("redact_patterns: []", "redact_patterns: ['ACME-\\d{5}']")
        store.commit({"atocore.yaml": cfg.encode()}, "redact ACME ids")
        s.service.poke()
        assert s.service.follow_main(30) is not None
        assert c.post("/context/build", json={"prompt": "lap diameter for ACME-67890"}).status_code == 200
        deadline = time.monotonic() + 10
        while not (path.exists() and "lap diameter for" in path.read_text() and "ACME-12345" not in path.read_text()) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        raw = path.read_text()
    assert "ACME-67890" not in raw and "ACME-12345" not in raw and "[REDACTED" in raw
