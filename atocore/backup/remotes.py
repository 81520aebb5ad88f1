"""Backup remotes: a name from ``atocore.yaml`` ``remotes:`` or a path / URL given directly."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..config import load_config
from ..errors import ValidationError

NETWORK_SCHEMES = ("ssh", "git", "git+ssh", "ssh+git", "http", "https")
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?!//)")  # user@host:path


@dataclass(frozen=True)
class Remote:
    name: str          # the configured name, or the URL itself when given directly
    url: str
    local_path: Path | None  # set for a path or file:// remote (verified by opening the repo)

    @property
    def kind(self) -> str:
        return "local" if self.local_path is not None else "network"

    def to_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "kind": self.kind}


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    scheme = urlparse(url).scheme
    if "://" in url and scheme:
        return None
    if _SCP_LIKE.match(url) and not Path(url).expanduser().exists():
        return None
    return Path(url).expanduser()


def make_remote(name: str, url: str) -> Remote:
    url = url.strip()
    if not url:
        raise ValidationError("remote", f"{name!r} has an empty URL")
    if "://" in url and not url.startswith("file://"):
        scheme = urlparse(url).scheme
        if scheme not in NETWORK_SCHEMES:
            raise ValidationError("remote", f"{url!r} uses an unsupported scheme {scheme!r}",
                                  allowed=["a path", "file://", *(f"{s}://" for s in NETWORK_SCHEMES)])
    path = _local_path(url)
    if path is not None:
        path = path.resolve()
    return Remote(name=name, url=url, local_path=path)


def configured_remotes(store) -> dict[str, Remote]:
    return {name: make_remote(name, url) for name, url in load_config(store).remotes.items()}


def resolve_remote(store, remote: str | None) -> list[Remote]:
    """The remotes to act on: the one named (or given as path/URL), or every configured one."""
    known = configured_remotes(store)
    if remote is None:
        if not known:
            raise ValidationError("remote", "no backup remote configured: add one under 'remotes:' in "
                                  "atocore.yaml (name: path or URL) or pass a path or URL")
        return list(known.values())
    if remote in known:
        return [known[remote]]
    looks_like_location = ("://" in remote or "/" in remote or remote.startswith(("~", "."))
                           or bool(_SCP_LIKE.match(remote)) or os.path.exists(remote))
    if not looks_like_location:
        raise ValidationError("remote", f"{remote!r} is neither a remote named in atocore.yaml nor a path or URL",
                              allowed=sorted(known) or None)
    return [make_remote(remote, remote)]


# A dead or silent network remote fails the push instead of hanging it. ssh: connect timeout plus
# keep-alives (dead after ~60 s of silence); http(s): per-request timeout. dulwich's git://
# client has no timeout hook; a push no longer holds the writer lock while it transfers.
NETWORK_TIMEOUT = 60
DEFAULT_SSH_COMMAND = (f"ssh -o ConnectTimeout={NETWORK_TIMEOUT // 2} -o ServerAliveInterval=15 "
                       f"-o ServerAliveCountMax={NETWORK_TIMEOUT // 15}")


def transport(remote: Remote):
    """A dulwich client and the path to hand it (``GIT_SSH_COMMAND`` honoured for ssh)."""
    from dulwich.client import get_transport_and_path
    from dulwich.config import ConfigDict

    if remote.local_path is not None:
        return get_transport_and_path(str(remote.local_path))
    config = ConfigDict()
    config.set((b"http",), b"timeout", str(NETWORK_TIMEOUT).encode())
    return get_transport_and_path(remote.url, config=config,
                                  ssh_command=os.environ.get("GIT_SSH_COMMAND") or DEFAULT_SSH_COMMAND)
