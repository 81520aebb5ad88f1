"""Redaction: realistic secrets disappear, ordinary text survives byte for byte.

The sample keys below are made up (random characters in each provider's documented shape);
none is a real credential.
"""

from __future__ import annotations

import pytest

from atocore.redact import looks_random, redact
from atocore.errors import ValidationError

R = "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lm"  # 32 mixed characters used to build key-shaped samples

SECRETS = {
    "anthropic": ("export ANTHROPIC_API_KEY=sk-ant-api03-" + R * 3 + "-AA", "sk-ant-api03"),
    "anthropic-inline": ("use key sk-ant-api03-" + R * 2 + "_x9AA in the header", "sk-ant-api03"),
    "openai-project": ("client = OpenAI(api_key='sk-proj-" + R + "T3BlbkFJ" + R[:20] + "')", "sk-proj-"),
    "openai-legacy": ("my key is sk-" + R + "T3BlbkFJ" + R[:16], "sk-Zx9"),
    "aws-key-id": ("aws_access_key_id = AKIAQ3EGVBMPLKJX7Y2Z", "AKIAQ3EGVBMPLKJX7Y2Z"),
    "aws-secret": ("aws_secret_access_key = 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", "wJalrXUtnFEMI"),
    "github-classic": ("git remote set-url origin https://ghp_" + R[:36].ljust(36, "a") + "@github.com/o/r", "ghp_"),
    "github-fine": ("GH=github_pat_11ABCDEFG0" + R + "_" + R[:20], "github_pat_"),
    "gitlab": ("token glpat-" + R[:20] + " for the runner", "glpat-"),
    "slack-bot": ("SLACK_BOT_TOKEN=xoxb-1234567890123-1234567890123-" + R[:24], "xoxb-"),
    "slack-webhook": ("post to https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/" + R[:24], "hooks.slack.com/services/T0"),
    "stripe": ("stripe.api_key = \"sk_live_" + R[:24] + "\"", "sk_live_"),
    "google": ("GOOGLE_API_KEY: AIzaSyB" + R[:32], "AIzaSyB"),
    "huggingface": ("huggingface-cli login --token hf_" + R[:34], "hf_Zx9"),
    "npm": ("//registry.npmjs.org/:_authToken=npm_" + R[:36].ljust(36, "q"), "npm_Zx9"),
    "bearer": ("curl -H 'Authorization: Bearer 4f9a8B7c6D5e4F3a2B1c0D9e8F7a6B5c' https://api.example.com/v1", "4f9a8B7c6D5e"),
    "jwt": ("token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "eyJhbGciOi"),
    "pem": ("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Z8Zq4v6Y7t1mL0eX9jZpQyRk\n"
            "q0bB8bM1r9P2uVn4f3XoC6Y7t1mL0eX9jZ==\n-----END RSA PRIVATE KEY-----\ndone", "MIIEpAIBAAKCAQEA"),
    "openssh": ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
                "-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXkt"),
    "url-password": ("DATABASE_URL=postgres://app:Sup3rS3cret!@db.internal:5432/prod", "Sup3rS3cret"),
    "git-url-password": ("git clone https://alice:hunter2pass@git.example.com/team/repo.git", "hunter2pass"),
    "env-password": ("DB_PASSWORD=correct-horse-battery-staple", "correct-horse"),
    "env-quoted": ('export API_SECRET="q8w7e6r5t4y3"', "q8w7e6r5t4y3"),
    "env-bare-name": ("PASSWORD=hunter2\nSECRET_KEY=django-insecure-abc", "hunter2"),
    "env-bare-name-2": ("SECRET_KEY=django-insecure-abc", "django-insecure"),
    "json-field": ('{"username": "ann", "password": "Tr0ub4dor&3"}', "Tr0ub4dor"),
    "yaml-field": ("smtp:\n  password: 'mail-pass-2026'\n", "mail-pass-2026"),
    "cli-flag": ("mytool deploy --api-key 9f8e7d6c5b4a --region eu", "9f8e7d6c5b4a"),
    "high-entropy": ("the signing secret is kH8sD2fL9qW3eR7tY1uI5oP0aS4dF6gJ8kL2zX3c and it rotates", "kH8sD2fL9qW3"),
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_secret_is_removed(name):
    text, secret_part = SECRETS[name]
    out = redact(text)
    assert secret_part not in out, out
    assert "[REDACTED:" in out


def test_context_around_a_secret_is_kept():
    out = redact("export OPENAI_API_KEY=sk-proj-" + R + "T3BlbkFJ" + R[:20] + "\nthen run make test")
    assert out.startswith("export OPENAI_API_KEY=[REDACTED:")
    assert out.endswith("\nthen run make test")
    assert redact("git clone https://alice:hunter2pass@git.example.com/r.git") == \
        "git clone https://alice:[REDACTED:password]@git.example.com/r.git"
    assert redact('{"password": "Tr0ub4dor&3", "user": "ann"}') == '{"password": "[REDACTED:secret]", "user": "ann"}'


ORDINARY = [
    "The fixture token expired; I regenerated it with `make fixtures` and the login test passes.",
    "Fixed in commit 3f786850e387550fdab836ed7e6dc881de23001b (see also a1b2c3d).",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "request id 123e4567-e89b-12d3-a456-426614174000, memory 01HZX3V8Q9J7K2M4N6P8R0S2T4",
    "Edit /home/ann/projects/p04/docs/optics/alignment.md and src/atocore/capture/redact.py:120",
    "C:\\Users\\Ann\\Projects\\MyApp2\\src\\components\\LoginForm.tsx",
    "/Users/Ann/Projects/MyApp2/src/components/LoginFormWithValidation.tsx",
    "MAX_TOKENS=4096\nSORT_KEY=created_at\nAPI_TOKEN=${API_TOKEN}\nAUTH_MODE=oauth\nPRIMARY_KEY=id",
    "token = get_token()\npassword: str = field(default='')\nkey = os.environ['API_KEY']",
    "def test_record_interaction_is_idempotent_by_message_id(store):\n    assert created is False",
    "Use Bearer authentication; the Authorization header carries the token.",
    "Pi is 3.14159265358979323846264338327950288419716939937510, and 2**64 = 18446744073709551616.",
    "The mirror is polished on a 300 mm pitch lap; surface error target 12 nm RMS at 633 nm.",
    "See https://docs.example.com/guide/install?version=2.1.0#step-3 and git@github.com:owner/repo.git",
    "ssh://git@host:2222/repo.git, http://localhost:8100/context/build, mailto:ann@example.com",
    "Set the password in the settings page, then remember that secrets never go in git.",
    "The AbstractSingletonProxyFactoryBean in Spring is a classic.",
    "numbers: 1,234,567.89 and 0x7fffffff and 1e-9; version v2.1.240",
    "base32 ULIDs like 01M8ATCAZX07S6QT9R9PTKH4KB and commit ea2272c are fine",
    "café, naïve, 東京, emoji 🎉 — unicode stays as it is",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_survives_unchanged(text):
    assert redact(text) == text


def test_private_tags_are_stripped():
    assert redact("keep <private>my salary is 100k</private> this") == "keep  this"
    assert redact("a <PRIVATE>x\ny</PRIVATE> b") == "a  b"
    assert redact("start <private>never closed, everything after goes") == "start "


def test_extra_patterns_from_config():
    assert redact("ticket ACME-12345 filed", ["ACME-\\d+"]) == "ticket [REDACTED:custom] filed"
    assert redact("employee id: E-778899", [r"employee id: (?P<secret>E-\d+)"]) == "employee id: [REDACTED:custom]"


def test_bad_extra_pattern_names_the_setting():
    with pytest.raises(ValidationError) as err:
        redact("x", ["(unclosed"])
    assert "capture.redact_patterns[0]" in str(err.value)


def test_redaction_is_idempotent():
    for text, _ in SECRETS.values():
        once = redact(text)
        assert redact(once) == once


def test_looks_random_rules():
    assert looks_random("kH8sD2fL9qW3eR7tY1uI5oP0aS4dF6gJ8kL2zX3c")
    assert not looks_random("3f786850e387550fdab836ed7e6dc881de23001b")  # hex: a git sha
    assert not looks_random("test_record_interaction_is_idempotent_by_id")
    assert not looks_random("/Users/Ann/Projects/MyApp2/src/components/LoginForm")


def test_large_text_keeps_prose_and_loses_the_key():
    # Speed is measured by bench/redact.py (no timed unit tests); this checks the result.
    text = ("ordinary prose about the mirror and the lap, commit 3f786850e387550fdab836ed7e6dc881de23001b. " * 2000
            + "AWS AKIAQ3EGVBMPLKJX7Y2Z")
    out = redact(text)
    assert "AKIAQ3EGVBMPLKJX7Y2Z" not in out and out.startswith("ordinary prose")
