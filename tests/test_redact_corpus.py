"""Table-driven redaction tests over the corpus in tests/data/redaction (issue 12, row 5).

Each realistic secret must lose its secret part; each ordinary look-alike must come out byte for
byte. bench/redact.py prints recall, false-positive rate and speed over the same files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from atocore.redact import redact

CORPUS = Path(__file__).parent / "data" / "redaction"
SECRETS = yaml.safe_load((CORPUS / "secrets.yaml").read_text(encoding="utf-8"))
LOOKALIKES = yaml.safe_load((CORPUS / "lookalikes.yaml").read_text(encoding="utf-8"))


def _id(entry: dict, i: int) -> str:
    return f"{i:03d}-{entry['class']}"


def test_corpus_is_large_enough():
    assert len(SECRETS) >= 80 and len(LOOKALIKES) >= 80
    classes = {s["class"] for s in SECRETS}
    for needed in ("prose-password", "env-password", "command-line", "userinfo", "hex-token"):
        assert needed in classes
    kinds = {x["class"] for x in LOOKALIKES}
    for needed in ("git-sha", "uuid", "data-uri", "integrity", "cid", "base64-json", "path", "url", "version"):
        assert needed in kinds


@pytest.mark.parametrize("entry", SECRETS, ids=[_id(e, i) for i, e in enumerate(SECRETS)])
def test_secret_is_redacted(entry):
    out = redact(entry["text"])
    assert entry["secret"] not in out, out
    assert "[REDACTED:" in out


@pytest.mark.parametrize("entry", LOOKALIKES, ids=[_id(e, i) for i, e in enumerate(LOOKALIKES)])
def test_lookalike_is_kept(entry):
    assert redact(entry["text"]) == entry["text"]


def test_redacting_twice_changes_nothing_more():
    for entry in SECRETS:
        once = redact(entry["text"])
        assert redact(once) == once, entry["text"]


@pytest.mark.parametrize("text", [
    "`redis-cli -a PASS` `docker login -p PASS`",             # a backquote ends the value
    "`curl -u user:PW`, `redis-cli -a PW`",                    # a marker is never the "user:" of another rule
    "| `smbclient -U user%PW`, `htpasswd -b f user PW` |",
])
def test_markdown_quoted_commands_redact_once(text):
    # The gate refuses a refresh whose (already redacted) files the redactor would still change,
    # so redaction must be a fixpoint on the markdown people write about commands.
    once = redact(text)
    assert once != text and redact(once) == once and "[REDACTED:[REDACTED" not in once


def test_context_around_new_classes_is_kept():
    assert redact("my password is Sunshine42! ok?") == "my password is [REDACTED:password]! ok?" or \
        redact("my password is Sunshine42! ok?") == "my password is [REDACTED:password] ok?"
    assert redact("DB_PASS=hunter2x\nDB_HOST=db") == "DB_PASS=[REDACTED:secret]\nDB_HOST=db"
    assert redact("mysql -u root -pS3cret! shop") == "mysql -u root -p[REDACTED:password] shop"
    assert redact("curl -u ann:S3cret! https://x.example.com") == "curl -u ann:[REDACTED:password] https://x.example.com"
    assert redact("ann:S3cret!@db.internal:5432") == "ann:[REDACTED:password]@db.internal:5432"


def test_megabyte_of_adversarial_text_is_handled():
    """Shapes that make careless patterns backtrack; the bench times them, here they must simply
    finish and still find the secret at the end."""
    tail = " DB_PASS=hunter2x"
    for unit in ("password is ", "a:b@", "token=", "mysql -u root ", "curl -u x ", '"password": "', "Ab3dE6gH9jK2"):
        text = unit * (1_000_000 // len(unit)) + "\n" + tail
        out = redact(text)
        assert "hunter2x" not in out and out.endswith("DB_PASS=[REDACTED:secret]")
