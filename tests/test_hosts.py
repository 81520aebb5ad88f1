"""The service answers only Hosts a DNS-rebinding page cannot forge (atocore/server/hosts.py)."""

from __future__ import annotations

import socket

from atocore.server.hosts import HostRule, split_host
from .fixtures_server import serve_store, two_projects  # noqa: F401  (fixture)


def test_split_host_handles_ports_brackets_and_bare_ipv6():
    assert split_host("LocalHost:8100") == ("localhost", "8100")
    assert split_host("[::1]:8100") == ("::1", "8100")
    assert split_host("[::1]") == ("::1", None)
    assert split_host("::1") == ("::1", None)
    assert split_host("atocore.lan") == ("atocore.lan", None)


def test_loopback_names_and_ip_literals_pass_other_names_only_when_listed():
    rule = HostRule.from_env({})
    for ok in ("127.0.0.1", "127.0.0.1:8100", "localhost:8100", "app.localhost", "[::1]:8100",
               "192.168.1.10:8100", "[fe80::1]"):
        assert rule.allows(ok), ok
    for bad in ("evil.example", "evil.example:8100", "127.0.0.1.nip.io:8100", "localhost.evil.example", "", ":8100"):
        assert not rule.allows(bad), bad
    listed = HostRule.from_env({"ATOCORE_ALLOWED_HOSTS": " atocore.lan, Proxy.Example:8443 "})
    assert listed.allows("atocore.lan:8100") and listed.allows("ATOCORE.LAN")
    assert listed.allows("proxy.example:8443") and not listed.allows("proxy.example:80")
    assert not listed.allows("evil.example")
    legacy = HostRule.from_env({"ATOCORE_MCP_ALLOWED_HOSTS": "atocore.lan"})  # the older name still counts
    assert legacy.allows("atocore.lan:8100")
    assert HostRule.from_env({"ATOCORE_ALLOWED_HOSTS": "*"}).allows("anything.example")


def _raw(port: int, host: bytes | None) -> bytes:
    """One GET /projects with exactly this Host header (or none, as HTTP/1.0 clients send)."""
    head = b"GET /projects HTTP/1.0\r\n" + (b"Host: " + host + b"\r\n" if host is not None else b"") + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_a_rebinding_host_is_refused_on_every_endpoint_before_anything_runs(two_projects, monkeypatch):
    monkeypatch.delenv("ATOCORE_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("ATOCORE_MCP_ALLOWED_HOSTS", raising=False)
    evil = {"Host": "rebind.evil.example:8100"}
    with serve_store(two_projects) as s, s.client() as c:
        listed = c.get("/projects", headers=evil)
        wrote = c.post("/memories", json={"text": "planted by a web page", "type": "knowledge"}, headers=evil)
        built = c.post("/context/build", json={"prompt": "p04 telescope mirror"}, headers=evil)
        ok = c.get("/projects")
        planted = c.post("/memories", json={"text": "written from this machine", "type": "knowledge"})
        port = int(s.url.rsplit(":", 1)[1])
        no_host = _raw(port, None)
        by_ip = _raw(port, b"127.0.0.1")
    for r in (listed, wrote, built):
        assert r.status_code == 421, r.text
        body = r.json()
        assert body["field"] == "Host" and "ATOCORE_ALLOWED_HOSTS" in body["message"]
        assert "rebind.evil.example:8100" in body["message"]
    assert ok.status_code == 200 and ok.json()
    assert planted.status_code in (200, 201), planted.text  # the same write from a loopback Host lands
    assert no_host.startswith(b"HTTP/1.1 200") and by_ip.startswith(b"HTTP/1.1 200")
    history = [c.message for c in two_projects.log(limit=5)]
    assert not any("planted by a web page" in m for m in history)


def test_a_listed_name_is_answered(two_projects, monkeypatch):
    monkeypatch.setenv("ATOCORE_ALLOWED_HOSTS", "atocore.lan")
    with serve_store(two_projects) as s, s.client() as c:
        assert c.get("/projects", headers={"Host": "atocore.lan:8100"}).status_code == 200
        assert c.get("/projects", headers={"Host": "other.lan:8100"}).status_code == 421
