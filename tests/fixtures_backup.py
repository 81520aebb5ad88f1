"""Fixtures for the backup tests: bare remotes made by the real git CLI and a real git daemon."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def git(*args: str, cwd=None, check: bool = True, git_dir=None) -> str:
    cmd = ["git"] + (["--git-dir", str(git_dir)] if git_dir else []) + list(args)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.org"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}{proc.stdout}")
    return proc.stdout.strip()


def make_bare(path: Path) -> Path:
    git("init", "--bare", "-q", str(path))
    return path


def fsck(git_dir: Path) -> None:
    git("fsck", "--strict", "--no-dangling", git_dir=git_dir)


def rev_parse(git_dir: Path, ref: str) -> str | None:
    out = git("rev-parse", "--verify", "-q", ref, git_dir=git_dir, check=False)
    return out or None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"git daemon did not listen on port {port}")


@dataclass
class Daemon:
    base: Path
    port: int
    proc: subprocess.Popen
    fsize_limit: int | None = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the daemon and its receive-pack children
            self.proc.wait(timeout=10)


def start_daemon(base: Path, port: int | None = None, fsize_limit: int | None = None) -> Daemon:
    port = port or free_port()

    def setup() -> None:
        os.setsid()
        if fsize_limit is not None:  # a "disk" that can hold no file larger than this
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={base}", "--informative-errors", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=setup)
    _wait_port(port)
    return Daemon(base, port, proc, fsize_limit)


@pytest.fixture
def bare_remote(tmp_path) -> Path:
    return make_bare(tmp_path / "laptop" / "atocore.git")


@pytest.fixture
def git_daemon(tmp_path):
    base = tmp_path / "daemon"
    base.mkdir()
    d = start_daemon(base)
    yield d
    d.stop()


class CuttingProxy:
    """A TCP proxy to a real server that drops both connections after ``limit`` bytes have gone
    from client to server: the remote disappearing in the middle of a push."""

    def __init__(self, target_port: int, limit: int):
        self.target_port = target_port
        self.limit = limit
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.cut = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            client, _ = self.sock.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.target_port))
        sent = [0]

        def up():
            try:
                while True:
                    data = client.recv(4096)
                    if not data:
                        break
                    if sent[0] + len(data) > self.limit:
                        self.cut.set()
                        break
                    sent[0] += len(data)
                    server.sendall(data)
            except OSError:
                pass
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

        def down():
            try:
                while True:
                    data = server.recv(4096)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass

        t = threading.Thread(target=down, daemon=True)
        t.start()
        up()
        t.join(timeout=5)

    def close(self) -> None:
        self.sock.close()


def random_files(n: int, size: int, prefix: str = "sources/bulk/docs") -> dict[str, bytes]:
    """Incompressible files, so a push of them takes real time and real bytes."""
    return {f"{prefix}/f{i:05d}.txt": os.urandom(size // 2).hex().encode() for i in range(n)}
