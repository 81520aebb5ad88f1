"""Fixtures for the projects / context / service tests: sample projects and a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from atocore.memories import add_memory
from atocore.projects import refresh, register_project
from atocore.retrieval import open_retriever
from atocore.state import propose_state

OPTICS_DOCS = {
    "polishing.md": "# Polishing\n\nThe P04 primary mirror is polished on a 300 mm pitch lap with cerium oxide.\n\n"
                    "## Schedule\n\nPolishing runs take four hours; the lap is recut every ten runs.\n",
    "metrology/interferometer.md": "# Interferometry\n\nThe Fizeau interferometer measures the mirror figure at "
                                   "633 nm. Surface error target is 12 nm RMS.\n",
    "notes.txt": "Alignment of the secondary mirror uses a laser tracker and three kinematic mounts.\n",
}
ROBOT_DOCS = {
    "gripper.md": "# Gripper\n\nThe rover gripper uses two servo motors and a force sensor in each finger.\n\n"
                  "## Firmware\n\nThe gripper firmware runs on an STM32 at 1 kHz control rate.\n",
    "navigation.rst": "Navigation\n==========\n\nThe rover plans paths with A* over a 5 cm occupancy grid.\n",
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


@pytest.fixture
def two_projects(store, tmp_path):
    """A store with projects p04 (optics) and rover (robotics), staged and indexed, plus state and memories."""
    optics = write_tree(tmp_path / "optics", OPTICS_DOCS)
    robot = write_tree(tmp_path / "robot", ROBOT_DOCS)
    register_project(store, "p04", [optics], name="P04 telescope", aliases=["primary mirror", "big glass"],
                     description="Optics of the P04 telescope", approve=True)
    register_project(store, "rover", [robot], name="Mars rover", aliases=["rv-2"],
                     description="A small rover with a gripper", approve=True)
    propose_state(store, "p04", "focus", "Finish the interferometry of the primary by March", category="focus",
                  approve=True)
    propose_state(store, "p04", "lap-size", "Pitch lap diameter is 300 mm", category="decision", approve=True)
    propose_state(store, "rover", "status", "Gripper firmware v2 in test", category="status", approve=True)
    add_memory(store, "The operator prefers cerium oxide slurry for the final polishing passes", "preference",
               project="p04")
    add_memory(store, "Rover gripper force sensors were recalibrated in June", "episodic", project="rover")
    refresh(store, None)
    open_retriever(store).update()
    return store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, url: str, app, server, thread):
        self.url = url
        self.app = app
        self.server = server
        self.thread = thread

    @property
    def service(self):
        return self.app.state.service

    def client(self, token: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)


@contextmanager
def serve_store(store, token: str | None = None, watch_interval: float = 0.1, request_timeout: float | None = None,
                **kw) -> Iterator[Served]:
    """A real uvicorn server for ``store`` on a free loopback port, in a thread."""
    import uvicorn

    from atocore.server import create_app
    from atocore.server.run import REQUEST_TIMEOUT, uvicorn_config

    app = create_app(str(store.path), token=token, watch_interval=watch_interval, **kw)
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, request_timeout=request_timeout or REQUEST_TIMEOUT))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", app, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def served(two_projects):
    with serve_store(two_projects) as s:
        yield s


@pytest.fixture
def served_token(two_projects):
    with serve_store(two_projects, token="s3cret-token") as s:
        yield s
