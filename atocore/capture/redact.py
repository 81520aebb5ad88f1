"""Secret redaction for captured text, applied before anything reaches the store.

Rules, in order (each replaces the secret with ``[REDACTED:<kind>]`` and keeps the
surrounding text, so a redacted turn still reads naturally):

1. ``<private>...</private>`` blocks are removed entirely (an unclosed ``<private>`` removes
   the rest of the text: fail closed).
2. PEM private key blocks (``-----BEGIN ... PRIVATE KEY-----`` to the END line).
3. Provider keys with a recognisable prefix: Anthropic, OpenAI, AWS access key ids, GitHub,
   GitLab, Slack (tokens and webhook URLs), Stripe, Google (API keys, OAuth tokens, client
   secrets), Hugging Face, npm, PyPI, and a few more (see ``_PREFIXED``).
4. JWTs, and ``Bearer``/``Basic``/``token`` values in Authorization-style headers.
5. Passwords in URLs (``scheme://user:PASSWORD@host``): only the password goes.
6. Assignments whose name says secret: ``.env``/shell style ``OPENAI_API_KEY=...``,
   ``export DB_PASSWORD="..."``, YAML/JSON ``"password": "..."``, CLI ``--token VALUE``.
   The name stays; the value goes. Values that are plainly not secrets (numbers,
   ``true``/``false``, ``${VAR}`` references, placeholders) are left alone, so
   ``MAX_TOKENS=4096`` survives.
7. Extra patterns from ``atocore.yaml`` (``capture.redact_patterns``): the whole match is
   replaced, or only the named group ``secret`` when the pattern has one.
8. High-entropy tokens: a run of 32+ base64/base64url characters that mixes upper case,
   lower case and digits with Shannon entropy >= 4 bits per character.

Deliberately *kept*: hex-only strings (git commit shas, sha256 digests, UUIDs), because
they are identifiers people refer to in prose and code; paths, URLs without credentials,
numbers, code and ordinary prose. The price: a secret that is pure hex and appears without
a telling name (``API_KEY=...``) or prefix is not caught. See docs/capture.md.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Iterable

MARK = "[REDACTED:{}]"


def _mark(kind: str) -> str:
    return MARK.format(kind)


# 1. <private> opt-out tags (claude-mem's convention).
_PRIVATE = re.compile(r"<private>.*?(?:</private>|\Z)", re.IGNORECASE | re.DOTALL)

# 2. PEM private keys; an unterminated block (a truncated paste) is removed to its end.
_PEM = re.compile(
    r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)

# 3. Prefixed provider credentials: (kind, pattern). Boundaries keep them from eating
# neighbouring words; the character classes follow gitleaks' rules, made a bit looser in
# length so that slightly different generations of a key format are caught too.
_B = r"(?<![A-Za-z0-9_\-])"  # start boundary that treats '_' and '-' as word characters
_E = r"(?![A-Za-z0-9_\-])"
_PREFIXED: list[tuple[str, str]] = [
    ("anthropic-key", r"sk-ant-(?:api|admin|sid)\d\d-[A-Za-z0-9_\-]{20,}"),
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", r"sk-[A-Za-z0-9]{20,}(?:T3BlbkFJ[A-Za-z0-9]{10,})?"),
    ("aws-access-key-id", r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"),
    ("github-token", r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}"),
    ("github-token", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("gitlab-token", r"gl(?:pat|ptt|dt|rt|soat|ft|imt|cbt|oas)-[A-Za-z0-9_\-]{20,}"),
    ("gitlab-token", r"glagent-[A-Za-z0-9_\-]{50,}"),
    ("slack-token", r"xox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack-token", r"xapp-\d-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}"),
    ("stripe-key", r"(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,}"),
    ("stripe-key", r"whsec_[A-Za-z0-9]{20,}"),
    ("google-api-key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("google-oauth-token", r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("google-client-secret", r"GOCSPX-[0-9A-Za-z_\-]{20,}"),
    ("huggingface-token", r"hf_[A-Za-z0-9]{30,}"),
    ("huggingface-token", r"api_org_[A-Za-z0-9]{30,}"),
    ("npm-token", r"npm_[A-Za-z0-9]{36}"),
    ("pypi-token", r"pypi-AgE[A-Za-z0-9_\-]{50,}"),
    ("groq-key", r"gsk_[A-Za-z0-9]{20,}"),
    ("perplexity-key", r"pplx-[A-Za-z0-9]{20,}"),
    ("xai-key", r"xai-[A-Za-z0-9]{20,}"),
    ("sendgrid-key", r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("digitalocean-token", r"do[por]_v1_[a-f0-9]{64}"),
    ("telegram-bot-token", r"\d{8,10}:AA[A-Za-z0-9_\-]{32,}"),
]
_PREFIXED_RE = [(kind, re.compile(_B + pat + _E)) for kind, pat in _PREFIXED]

# 4. JWTs and header credentials.
_JWT = re.compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _E)
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Token|Bot)(\s+)([A-Za-z0-9._~+/\-]{16,}=*)")
_HEADER_KEY = re.compile(
    r"(?i)\b((?:x-)?(?:api-?key|auth-?token|access-?token|secret)\s*[:=]\s*)([^\s\"',;]{8,})"
)

# 5. user:password@ in URLs (any scheme).
_URL_PASSWORD = re.compile(r"(?<![a-zA-Z0-9+.\-])([a-zA-Z][a-zA-Z0-9+.\-]{0,30}://[^\s:/@]{1,256}:)([^\s@/]{1,256})(@)")

# 6. Assignments with a telling name.
_SECRET_WORD = r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|AUTH)"
_STRONG_WORD = re.compile(r"SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL", re.IGNORECASE)
# .env / shell style: an upper-case name (any value shape) ...
_ENV_ASSIGN = re.compile(
    r"(?<![A-Za-z0-9_])((?:export\s+)?[A-Z0-9_]*" + _SECRET_WORD + r"[A-Z0-9_]*\s*[=:]\s*)"
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'#,;]+)"
)
# ... or a lower-case config name (aws_secret_access_key = ...), unquoted value.
_LOWER_ASSIGN = re.compile(
    r"(?<![A-Za-z0-9_.])([a-z][a-z0-9_]*(?:secret|password|passwd|passphrase|api_key|apikey|token|private_key)"
    r"[a-z0-9_]*\s*[=:]\s*)([^\s\"'#,;()\[\]{}]+)(?=\s|$|[,;#])",
    re.MULTILINE,
)
_QUOTED_ASSIGN = re.compile(
    r"(?i)([\"']?\b(?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token"
    r"|client[_-]?secret|secret[_-]?key|secret|password|passwd|passphrase|token|private[_-]?key)[\"']?"
    r"\s*(?::|=|:=|=>)\s*)([\"'])([^\"'\n]{4,})\2"
)
_CLI_FLAG = re.compile(
    r"(?i)(--(?:api[-_]?key|token|secret|password|passwd|auth-token|access-token)(?:=|\s+))([\"']?)([^\s\"']{4,})\2"
)
_NOT_SECRET = re.compile(
    r"""^(?:
        \d[\d_.,]*[a-z]{0,2}          # numbers and sizes: 4096, 1_000, 2.5, 10ms
      | true|false|yes|no|on|off|none|null|nil|undefined|empty|required|optional
      | \$\{?[A-Za-z_][A-Za-z0-9_]*\}?(?::-[^}]*\})?   # $VAR, ${VAR}, ${VAR:-x}
      | <[^>]*> | \{\{.*\}\} | %\(?\w+\)?s?          # <placeholder>, {{ template }}, %(x)s
      | \*+ | x{3,} | \.{3} | …
      | \[REDACTED:[a-z\-]+\]
      | (?:os\.)?(?:environ|getenv|env)\b.*
      | [a-z_][a-z0-9_]*\(.*            # a function call: get_token(...)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

# 8. High-entropy tokens.
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}(?![A-Za-z0-9+/_\-])")
_HEX = re.compile(r"^[0-9a-fA-F\-]+$")


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    counts: dict[str, int] = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(token: str) -> bool:
    """Whether a 32+ character token looks like a generated secret rather than a word or path."""
    core = token.rstrip("=")
    if _HEX.match(core):
        return False  # git shas, digests and UUIDs are kept (documented)
    if not (any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)):
        return False
    digit_runs = len(re.findall(r"\d+", core))
    if "/" in core:
        # A path like /Users/Ann/Projects/App2/src is mixed-case too; random base64 has many
        # scattered digits, a path few.
        if digit_runs < 3 or max(len(seg) for seg in core.split("/")) < 12:
            return False
    elif digit_runs < 2:
        return False
    return entropy(core) >= 4.0


def _sub_value(kind: str, keep_groups: tuple[int, ...], value_group: int):
    def repl(m: re.Match[str]) -> str:
        value = m.group(value_group)
        bare = value.strip("\"'")
        if not bare or _NOT_SECRET.match(bare) or bare.startswith("[REDACTED:"):
            return m.group(0)
        quote = value[0] if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1 else ""
        return "".join(m.group(g) for g in keep_groups) + quote + _mark(kind) + quote

    return repl


def secretish(value: str) -> bool:
    """Whether an assigned value could be a credential (not a word, path, number or reference)."""
    if len(value) < 6 or _NOT_SECRET.match(value) or "[REDACTED:" in value:
        return False
    if value[:1] in "/~." or value.startswith(("http://", "https://")) and "@" not in value:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    if has_digit and has_alpha:
        return True
    return len(value) >= 16 and any(c.isupper() for c in value) and any(c.islower() for c in value)


def _env_repl(m: re.Match[str]) -> str:
    value = m.group(2)
    bare = value.strip("\"'")
    strong = bool(_STRONG_WORD.search(m.group(1)))
    if strong:
        if len(bare) < 4 or _NOT_SECRET.match(bare) or "[REDACTED:" in bare:
            return m.group(0)
    elif not secretish(bare):
        return m.group(0)
    quote = value[0] if value[:1] in "\"'" and len(value) > 1 else ""
    return m.group(1) + quote + _mark("secret") + quote


def _quoted_repl(m: re.Match[str]) -> str:
    value = m.group(3)
    if _NOT_SECRET.match(value) or "[REDACTED:" in value:
        return m.group(0)
    return m.group(1) + m.group(2) + _mark("secret") + m.group(2)


def _cli_repl(m: re.Match[str]) -> str:
    value = m.group(3)
    if _NOT_SECRET.match(value) or "[REDACTED:" in value:
        return m.group(0)
    return m.group(1) + m.group(2) + _mark("secret") + m.group(2)


def _auth_repl(m: re.Match[str]) -> str:
    value = m.group(3)
    if "[REDACTED:" in value or not any(c.isdigit() for c in value) and value.isalpha():
        return m.group(0)  # "Bearer authentication" is prose, not a token
    return m.group(1) + m.group(2) + _mark("token")


def _entropy_repl(m: re.Match[str]) -> str:
    return _mark("high-entropy") if looks_random(m.group(0)) else m.group(0)


@lru_cache(maxsize=64)
def compile_extra(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Compile configured patterns; a bad one raises ``ValidationError`` naming it (fail closed)."""
    out = []
    for i, pat in enumerate(patterns):
        try:
            out.append(re.compile(pat))
        except re.error as exc:
            from ..errors import ValidationError

            raise ValidationError(f"capture.redact_patterns[{i}]", f"{pat!r} is not a valid regular expression ({exc})") from None
    return tuple(out)


def _extra_repl(m: re.Match[str]) -> str:
    if "secret" in m.re.groupindex and m.group("secret") is not None:
        start, end = m.span("secret")
        base = m.start()
        whole = m.group(0)
        return whole[: start - base] + _mark("custom") + whole[end - base :]
    return _mark("custom")


def redact(text: str, extra_patterns: Iterable[str] = ()) -> str:
    """Return ``text`` with secrets replaced by ``[REDACTED:<kind>]`` markers.

    ``extra_patterns`` are regular expressions (from ``capture.redact_patterns``). Pure
    function, no I/O; safe to call on every captured string.
    """
    if not text:
        return text
    text = _PRIVATE.sub("", text)
    text = _PEM.sub(_mark("private-key"), text)
    for kind, pat in _PREFIXED_RE:
        text = pat.sub(_mark(kind), text)
    text = _JWT.sub(_mark("jwt"), text)
    text = _AUTH_SCHEME.sub(_auth_repl, text)
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + _mark("password") + m.group(3), text)
    text = _ENV_ASSIGN.sub(_env_repl, text)
    text = _LOWER_ASSIGN.sub(_env_repl, text)
    text = _QUOTED_ASSIGN.sub(_quoted_repl, text)
    text = _CLI_FLAG.sub(_cli_repl, text)
    text = _HEADER_KEY.sub(_sub_value("secret", (1,), 2), text)
    extra = tuple(extra_patterns)
    if extra:
        for pat in compile_extra(extra):
            text = pat.sub(_extra_repl, text)
    return _CANDIDATE.sub(_entropy_repl, text)


def redact_value(value, extra_patterns: Iterable[str] = ()):
    """Redact every string inside a JSON-like value (dict keys are kept as they are)."""
    if isinstance(value, str):
        return redact(value, extra_patterns)
    if isinstance(value, dict):
        return {k: redact_value(v, extra_patterns) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, extra_patterns) for v in value]
    return value
