"""Secret redaction for captured text, applied before anything reaches the store.

Rules, in order (each replaces the secret with ``[REDACTED:<kind>]`` and keeps the
surrounding text, so a redacted turn still reads naturally):

1. ``<private>...</private>`` blocks are removed entirely (an unclosed ``<private>`` removes
   the rest of the text: fail closed).
2. PEM private key blocks (``-----BEGIN ... PRIVATE KEY-----`` to the END line).
3. Provider keys with a recognisable prefix: Anthropic, OpenAI, AWS access key ids, GitHub,
   GitLab, Slack (tokens and webhook URLs), Stripe, Google, Hugging Face, npm, PyPI, Vault,
   Shopify, Twilio, Mailgun and more (see ``_PREFIXED``).
4. JWTs, and ``Bearer``/``Basic``/``token`` values in Authorization-style headers.
5. Passwords in URLs (``scheme://user:PASSWORD@host``) and without a scheme
   (``user:PASSWORD@db.example.com``): only the password goes.
6. Command-line credentials whose flag is unambiguous: ``mysql -pPASS``, ``sshpass -p PASS``,
   ``curl -u user:PASS``, ``redis-cli -a PASS``, ``docker login -p PASS``, ``ldapsearch -w``,
   ``openssl ... pass:PASS``, ``smbclient -U user%PASS``, ``--password=...`` and kin.
7. Assignments whose name says secret: ``.env``/shell style ``OPENAI_API_KEY=...``,
   ``DB_PASS=``, ``MYSQL_PWD=``, ``export X_TOKEN=``, ``spring.datasource.password=...``,
   YAML/JSON ``"password": "..."``. The name stays; the value goes. Names with a strong word
   (PASSWORD, PASS, PWD, SECRET, PASSPHRASE, CREDENTIAL) lose any value that is not plainly
   a reference; names with a weak word (KEY, TOKEN, AUTH) lose values that look generated
   (letters and digits), so ``MAX_TOKENS=4096`` and ``SORT_KEY=created_at`` survive.
8. Passwords said in prose: "my password is ...", "the wifi password is ...", "the PIN is
   4821", "passphrase: ...", ``.netrc`` lines. Ordinary continuations ("is required", "is
   stored in the vault") are recognised by a word list and kept.
9. Extra patterns from ``atocore.yaml`` (``capture.redact_patterns``): the whole match is
   replaced, or only the named group ``secret`` when the pattern has one.
10. Tokens in key-ish context: a 16+ character run of letters and digits, or a 32+ digit hex
   run, right after "api key", "token", "secret" and the like (not after "sha", "commit",
   "hash", "digest"...).
11. High-entropy tokens anywhere: a run of 32+ base64/base64url characters that mixes upper
   case, lower case and digits with Shannon entropy >= 4 bits per character -- except
   encoded data that is plainly not a credential: ``data:...;base64,`` URIs, subresource
   integrity strings (``sha512-...``), Go sums (``h1:...``), IPFS CIDs, SSH public keys,
   certificates and public keys, and base64 that decodes to readable text or JSON.

Deliberately *kept*: hex-only strings outside key-ish context (git commit shas, sha256
digests, UUIDs), paths, URLs without credentials, version strings, numbers, code and ordinary
prose. The corpus in ``tests/data/redaction`` measures both sides; ``bench/redact.py`` prints
recall, false-positive rate and speed. See docs/capture.md.

Every pattern is linear in the input: quantifiers on character classes are bounded or anchored
by a look-behind, so a megabyte of adversarial text costs milliseconds, not minutes.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
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
_PREFIXED: list[tuple[str, tuple[str, ...], str]] = [  # (kind, literals one of which every match holds, pattern)
    ("anthropic-key", ("sk-ant-",), r"sk-ant-(?:api|admin|sid)\d\d-[A-Za-z0-9_\-]{20,}"),
    ("anthropic-key", ("sk-ant-",), r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", ("sk-",), r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", ("sk-",), r"sk-[A-Za-z0-9]{20,}(?:T3BlbkFJ[A-Za-z0-9]{10,})?"),
    ("aws-access-key-id", ("A3T", "AKIA", "ASIA", "ABIA", "ACCA"),
     r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"),
    ("github-token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"gh[pousr]_[A-Za-z0-9]{30,}"),
    ("github-token", ("github_pat_",), r"github_pat_[A-Za-z0-9_]{22,}"),
    ("gitlab-token", ("gl",), r"gl(?:pat|ptt|dt|rt|soat|ft|imt|cbt|oas)-[A-Za-z0-9_\-]{20,}"),
    ("gitlab-token", ("glagent-",), r"glagent-[A-Za-z0-9_\-]{50,}"),
    ("slack-token", ("xox",), r"xox[abposre]-[A-Za-z0-9\-]{10,}"),
    ("slack-token", ("xapp-",), r"xapp-\d-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", ("hooks.slack.com",),
     r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}"),
    ("discord-webhook", ("/api/webhooks/",),
     r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]{20,}"),
    ("stripe-key", ("_test_", "_live_", "_prod_"), r"[sr]k_(?:test|live|prod)_[A-Za-z0-9]{10,}"),
    ("stripe-key", ("whsec_",), r"whsec_[A-Za-z0-9]{20,}"),
    ("google-api-key", ("AIza",), r"AIza[0-9A-Za-z_\-]{35}"),
    ("google-oauth-token", ("ya29.",), r"ya29\.[0-9A-Za-z_\-]{20,}"),
    ("google-client-secret", ("GOCSPX-",), r"GOCSPX-[0-9A-Za-z_\-]{20,}"),
    ("huggingface-token", ("hf_",), r"hf_[A-Za-z0-9]{30,}"),
    ("huggingface-token", ("api_org_",), r"api_org_[A-Za-z0-9]{30,}"),
    ("npm-token", ("npm_",), r"npm_[A-Za-z0-9]{36}"),
    ("pypi-token", ("pypi-AgE",), r"pypi-AgE[A-Za-z0-9_\-]{50,}"),
    ("groq-key", ("gsk_",), r"gsk_[A-Za-z0-9]{20,}"),
    ("perplexity-key", ("pplx-",), r"pplx-[A-Za-z0-9]{20,}"),
    ("xai-key", ("xai-",), r"xai-[A-Za-z0-9]{20,}"),
    ("sendgrid-key", ("SG.",), r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("digitalocean-token", ("_v1_",), r"do[por]_v1_[a-f0-9]{64}"),
    ("telegram-bot-token", (":AA",), r"\d{8,10}:AA[A-Za-z0-9_\-]{32,}"),
    ("vault-token", ("hvs.", "hvb.", "hvr."), r"hv[sbr]\.[A-Za-z0-9_\-]{24,}"),
    ("shopify-token", ("shpat_", "shpca_", "shppa_", "shpss_"), r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("twilio-key", ("SK",), r"SK[0-9a-fA-F]{32}"),
    ("mailgun-key", ("key-",), r"key-[0-9a-f]{32}"),
    ("mailchimp-key", ("-us",), r"[0-9a-f]{32}-us\d{1,2}"),
    ("atlassian-token", ("ATATT3",), r"ATATT3[A-Za-z0-9_\-=]{30,}"),
    ("postman-key", ("PMAK-",), r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    ("linear-key", ("lin_api_", "lin_oauth_"), r"lin_(?:api|oauth)_[A-Za-z0-9]{30,}"),
    ("notion-token", ("secret_", "ntn_"), r"(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})"),
    ("databricks-token", ("dapi",), r"dapi[a-f0-9]{32}(?:-\d)?"),
    ("replicate-token", ("r8_",), r"r8_[A-Za-z0-9]{30,}"),
    ("doppler-token", ("dp.",), r"dp\.(?:st|sa|ct|pt|scim|audit)\.[A-Za-z0-9_\-.]{30,}"),
    ("age-secret-key", ("AGE-SECRET-KEY-1",), r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    ("square-token", ("EAAA", "sq0atp-", "sq0csp-"), r"(?:EAAA[A-Za-z0-9_\-]{60}|sq0(?:atp|csp)-[A-Za-z0-9_\-]{22,})"),
    ("azure-storage-key", ("AccountKey=",), r"AccountKey=[A-Za-z0-9+/]{80,}={0,2}"),
]
# Each pattern runs only when one of its literals appears in the text at all, and starts with
# the literal where it can (so the regex engine skips to it); the start boundary is checked in
# Python rather than by a leading look-behind, which would make the engine try every position.
_PREFIXED_RE = [(kind, triggers, re.compile(pat + _E)) for kind, triggers, pat in _PREFIXED]
_BOUNDARY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _prefixed_repl(kind: str):
    def repl(m: re.Match[str]) -> str:
        s = m.start()
        if s and m.string[s - 1] in _BOUNDARY_CHARS:
            return m.group(0)  # inside a longer word: not this key
        return _mark(kind)

    return repl


_PREFIXED_REPL = [_prefixed_repl(kind) for kind, _, _ in _PREFIXED]

# 4. JWTs and header credentials.
_JWT = re.compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _E)
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Token|Bot|Digest)(\s+)([A-Za-z0-9._~+/\-]{8,}=*)")
_HEADER_KEY = re.compile(
    r"(?i)\b((?:x-)?(?:api-?key|auth-?token|access-?token|secret)\s*[:=]\s*)([^\s\"',;]{8,})"
)

# 5. user:password@ in URLs (any scheme; the user may be empty, as in redis://:pw@host) ...
_URL_PASSWORD = re.compile(r"(?<![a-zA-Z0-9+.\-])([a-zA-Z][a-zA-Z0-9+.\-]{0,30}://[^\s:/@]{0,256}:)([^\s@/]{1,256})(@)")
# ... and without one: admin:S3cret@10.0.0.5, root:pw@db.internal:3306 (the host must look like one).
_BARE_USERINFO = re.compile(
    r"(?<![A-Za-z0-9._%+\-:/@\[\]\\])([A-Za-z0-9._%+\-]{1,64}):([^\s:/\"'<>()\[\]{}]{1,128})@"
    r"(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9][A-Za-z0-9.\-]{0,253})"
)
_LABELS = {"mailto", "email", "e-mail", "mail", "from", "to", "cc", "bcc", "reply-to", "contact", "author",
           "by", "sip", "sips", "xmpp", "tel", "im", "user", "login", "re", "fwd", "note", "see", "ping", "cc/bcc"}

# 6. Command-line credentials, only where the flag means "password" without doubt. Each rule is
# (literals that must appear, the command, the flag within the rest of that command up to a
# pipe, ';', '&' or the end of the line). A command's segment is scanned once: linear time.
# (a backquote ends a value: commands are quoted that way in markdown)
_V = r"(?P<q>['\"]?)(?P<secret>[^\s'\"`\-][^\s'\"`]{0,199})(?P=q)"
_COMMANDS: list[tuple[tuple[str, ...], re.Pattern[str], re.Pattern[str]]] = [
    # mysql family: -pPASS (attached; "-p PASS" would be the database name)
    (("mysql", "mariadb"), re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlslap|"
                                      r"mariadb|mariadb-dump|mariadb-admin)\b"), re.compile(r"(?<=[ \t])-p" + _V)),
    # -p PASS where that is the only meaning
    (("sshpass", "mongo"), re.compile(r"\b(?:sshpass|mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport)\b"),
     re.compile(r"(?<=[ \t])-p[ \t]*" + _V)),
    (("redis-cli",), re.compile(r"\bredis-cli\b"), re.compile(r"(?<=[ \t])(?:-a|--pass)[ \t]+" + _V)),
    (("login",), re.compile(r"\b(?:docker|podman|buildah|skopeo|helm|oras)(?:[ \t]+registry)?[ \t]+login\b"),
     re.compile(r"(?<=[ \t])(?:-p|--password)(?:[ \t]+|=)" + _V)),
    (("ldap",), re.compile(r"\bldap(?:search|add|modify|delete|whoami|passwd|compare|modrdn)\b"),
     re.compile(r"(?<=[ \t])-w[ \t]+" + _V)),
    # curl/wget/httpie: -u user:PASS (the user stays)
    (("curl", "wget", "http", "xh"), re.compile(r"\b(?:curl|wget|https?|xh)\b"),
     re.compile(r"(?<=[ \t])(?:-u|--user|-a|--auth)(?:[ \t]*|=)(?P<q>['\"]?)[^\s:'\"]{1,100}:"
                r"(?P<secret>[^\s'\"`]{1,200})(?P=q)")),
    # smbclient -U user%PASS
    (("smb", "rpcclient", "cifs", "crackmapexec", "netexec", "nxc"),
     re.compile(r"\b(?:smbclient|smbmap|rpcclient|smbcacls|mount\.cifs|crackmapexec|netexec|nxc)\b"),
     re.compile(r"(?:-U|--user(?:name)?)(?:[ \t]*|=)(?P<q>['\"]?)[^\s%'\"]{1,100}%(?P<secret>[^\s'\"`]{1,200})(?P=q)")),
    # htpasswd -b[c] FILE USER PASS
    (("htpasswd",), re.compile(r"\bhtpasswd\b"),
     re.compile(r"(?<=[ \t])-[A-Za-z]*b[A-Za-z]*(?:[ \t]+-[A-Za-z]+){0,3}[ \t]+[^\s\-]\S{0,200}[ \t]+\S{1,200}[ \t]+"
                + _V)),
]
_SEGMENT_END = re.compile(r"[\n;]|\|\|?|&&|&(?=[ \t]|$)")
# openssl -pass pass:PASS / -passin pass:PASS (needs no command context)
_OPENSSL_PASS = re.compile(r"-pass(?:in|out|word)?[ \t]+(?P<q>['\"]?)pass:(?P<secret>[^\s'\"`]{1,200})(?P=q)")
_CLI_FLAG = re.compile(
    r"(?i)(?<![\w-])(--?(?:[a-z0-9]+-){0,4}(?:password|passwd|pass|pwd|token|secret|api-?key|apikey|"
    r"access-key|secret-key|private-key|client-secret|auth)(?:=|[ \t]+))([\"']?)([^\s\"']{4,200})\2"
)

# 7. Assignments with a telling name (the name is classified in Python, see _name_strength).
_ASSIGN = re.compile(
    r"(?<![A-Za-z0-9_.\-$\[])((?:export[ \t]+|set[ \t]+|setx[ \t]+|\$env:)?([\"']?)([A-Za-z_][A-Za-z0-9_.\-]{0,80})\2"
    r"[ \t]*(?::=|=>|[=:])[ \t]*)(\"[^\"\n]{0,500}\"|'[^'\n]{0,500}'|[^\s\"'#,;&][^\s\"',;&]{0,499})"
)
# <add key="DbPassword" value="..."/> (.NET config) and <password>...</password>
_XML_KEY_VALUE = re.compile(r"(\bkey=([\"'])([\w.:\-]{1,80})\2[ \t]+value=([\"']))([^\"'\n]{1,500})(\4)")
_XML_ELEMENT = re.compile(r"(<([A-Za-z_][\w.\-]{0,60})>)([^<\n]{1,500})(</\2>)")
_SECRET_TRIGGERS = ("pass", "pwd", "pw", "pin", "secret", "credential", "key", "token", "auth", "signature",
                    "cookie", "session")
_STRONG_SUBSTR = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "CREDENTIAL", "PASSCODE")
_STRONG_SEGMENTS = {"PASS", "PWD", "PW", "PIN"}
_WEAK_SUBSTR = ("KEY", "TOKEN", "AUTH", "SIGNATURE", "COOKIE", "SESSION")
_NOT_PASS = ("BYPASS", "COMPASS", "SURPASS", "OVERPASS", "UNDERPASS", "TRESPASS", "ENCOMPASS", "PASSENGER")
# A secret word followed by one of these names a setting *about* the secret, not the secret.
_CONFIG_SEGMENTS = {"MIN", "MAX", "LEN", "LENGTH", "TIMEOUT", "TTL", "EXPIRY", "EXPIRES", "EXPIRE", "AGE", "FILE",
                    "PATH", "DIR", "FOLDER", "URL", "URI", "ENDPOINT", "HEADER", "FIELD", "PARAM", "NAME", "ID",
                    "ALGO", "ALGORITHM", "POLICY", "RESET", "ROUNDS", "ITERATIONS", "PROMPT", "CMD", "COMMAND",
                    "ENABLED", "DISABLED", "ENABLE", "DISABLE", "REQUIRED", "MODE", "TYPE", "FORMAT", "SIZE",
                    "BITS", "COUNT", "LIMIT", "RETRIES", "LIFETIME", "STORE", "MANAGER", "PROVIDER", "HELPER",
                    "ENV", "VAR", "LOCATION", "REGION", "PREFIX", "SUFFIX", "STDIN", "SOURCE", "VERSION", "INPUT",
                    "LABEL", "HINT", "PLACEHOLDER", "ELEMENT", "BOX", "FORM", "VISIBLE", "HIDDEN", "ERROR",
                    "MESSAGE", "STRENGTH", "VALIDATOR", "HASHER", "ENCODER", "TEXT", "CHARS", "PATTERN", "REGEX",
                    "RULES", "HANDLER", "CALLBACK", "SERVICE", "CLASS", "WIDGET", "BUTTON", "TOGGLE", "SCHEME"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _name_strength(name: str) -> int:
    """2: the name says password/secret; 1: key/token-ish; 0: not a secret's name."""
    upper = _CAMEL.sub("_", name).upper()
    if upper in ("PWD", "OLDPWD", "PASSWORD_STORE_DIR", "GNUPGHOME"):
        return 0  # the shell's working directory, a pass(1) setting
    segments = [s for s in re.split(r"[_.\-]+", upper) if s]
    if not segments:
        return 0
    if segments[-1] in _CONFIG_SEGMENTS and len(segments) > 1:
        return 0
    if any(w in upper for w in _STRONG_SUBSTR):
        return 2
    for seg in segments:
        if seg in _STRONG_SEGMENTS or (seg.endswith(("PASS", "PWD")) and not seg.endswith(_NOT_PASS)
                                       and seg not in ("PASS",) and len(seg) > 4):
            return 2
    if any(w in upper for w in _WEAK_SUBSTR):
        return 1
    return 0


_NOT_SECRET = re.compile(
    r"""^(?:
        \d[\d_.,]*[a-z]{0,2}          # numbers and sizes: 4096, 1_000, 2.5, 10ms
      | true|false|yes|no|on|off|none|null|nil|undefined|empty|required|optional
      | \$\{?[A-Za-z_][A-Za-z0-9_]*\}?(?::-[^}]*\})?   # $VAR, ${VAR}, ${VAR:-x}
      | \$\(.*\) | `.*`                               # $(command), `command`
      | <[^>]*> | \{\{.*\}\} | \{[A-Za-z_][\w.]*\} | %\(?\w+\)?s? | %[A-Z_]+%   # placeholders, templates
      | \*+ | x{3,} | \.{3} | …
      | \[REDACTED:[a-z\-]+\]
      | (?:os\.)?(?:environ|getenv|env)\b.*
      | [a-z_][a-z0-9_]*\(.*            # a function call: get_token(...)
      | [A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+(?:\(|\[).*   # a method call or lookup: document.getElementById(
      | (?:self|this|cls|config|settings|cfg|conf|options|opts|args|params|request|req|os|process|env|ctx|
           context|secrets|credentials|creds|vault|data|form|user|auth|app)\.[A-Za-z_][\w.]*.*   # attribute access
      | vault:.* | arn:aws:.* | op://.* | secretsmanager:.* | ref\+.* | keyring:.*   # references to a vault
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

# 8. Passwords in prose.
_PROSE = re.compile(
    r"(?i)(?<![\w\-])((pass(?:word|wd|phrase|code)|pwd|pw|pin(?:[ \t]+(?:code|number))?|"
    r"(?:api|access|secret|private|license|wi-?fi|wpa2?|network)[ \t_\-]?key|"
    r"(?:api|access|auth|bearer|session|refresh|personal[ \t]+access)[ \t_\-]?token|token|secret)s?"
    r"(?:[ \t]+(?:for|of|to|on|at|in)(?:[ \t]+(?!(?:is|was|are)\b)[\w@.'\u2019\-]{1,40}){1,5})?"
    r"([ \t]*(?:(?:is|was|are)[ \t]+(?:now[ \t]+|still[ \t]+)?(?:(?:set|changed|reset|updated|rotated)[ \t]+to[ \t]+)?"
    r"|has[ \t]+been[ \t]+(?:set|changed|reset|updated|rotated)[ \t]+to[ \t]+|[:=][ \t]*|->[ \t]*|=>[ \t]*)[ \t]*:?[ \t]*"
    r"|[ \t]+to[ \t]+|[ \t]+))"
    r"([\"'`\u201c\u2018]?)([^\s\"'`\u201d\u2019]{3,200})"
)
_NETRC = re.compile(r"(?im)(^[ \t]*(?:machine|default)\b[^\n]{0,300}?\bpassword[ \t]+|^[ \t]*password[ \t]+)([^\s]{3,200})")
_STOPWORDS = frozenset("""
a an the my your our their his her its this that these those it is was be being been are were will would can
could should must may might not no none null nil empty blank missing required optional needed necessary
wrong incorrect correct invalid valid expired expiring revoked rotated stored saved kept set unset changed
reset updated hashed encrypted encoded hidden masked redacted secret private public same different too very
still now also only just already always never in on at of for to from with by via as into inside under over
case-sensitive long short weak strong good bad ok okay fine there here what which where how why when who
whatever something anything nothing shown printed logged visible sent generated created provided given
configured defined specified read loaded fetched managed handled passed used asked requested prompted typed
entered checked verified validated compared accepted rejected refused ignored supported available
unavailable disabled enabled off true false yes default str string int bytes bool any secretstr field type
value variable env environment file path name and or but if then else so because while until unless each
every all some any more less most least enough sufficient insufficient mandatory obligatory random unique
unknown known leaked compromised exposed safe unsafe secure insecure sensitive strongest weakest
""".split())


def _strip_trailing(value: str) -> str:
    while value and value[-1] in ".,;:)]}!?" and len(value) > 1:
        if value[-1] in "!?" and len(value.rstrip("!?")) >= 6 and any(c.isdigit() for c in value):
            break  # "hunter2!" -- the mark is probably part of it
        value = value[:-1]
    return value


def _password_shaped(value: str) -> bool:
    """Letters and digits and (a symbol or mixed case): a password, not a word."""
    if len(value) < 6 or not (_DIGIT.search(value) and _ALPHA.search(value)):
        return False
    return bool(_SYMBOL.search(value) or _UPPER.search(value) and _LOWER.search(value))


def _prose_secret(keyword: str, value: str) -> bool:
    """Whether ``value`` (after "password is", "token:" ...) is the secret itself."""
    low = value.lower()
    if len(value) < 4 or low in _STOPWORDS or value.startswith("[REDACTED:") or "[REDACTED:" in value:
        return False
    if value[:1] in "([{<$%/~" or value.startswith(("./", "../", "http://", "https://")) and "@" not in value:
        return False
    kw = keyword.lower()
    if kw.startswith("pin"):
        return value.isdigit() and 4 <= len(value) <= 12
    if _NOT_SECRET.match(value) and not value.isdigit():
        return False
    if kw.startswith(("pass", "pwd", "pw")) or kw.endswith(("wifi key", "wi-fi key", "wpa key", "wpa2 key",
                                                               "network key")):
        return True
    return secretish(value) or _HEXISH.match(value) is not None and len(value) >= 16


# 10. Tokens in key-ish context.
_CONTEXT_TOKEN = re.compile(r"(?<![A-Za-z0-9_\-+/=.])[A-Za-z0-9_\-+/]{16,256}={0,2}(?![A-Za-z0-9_\-+/=])")
_KEY_CONTEXT = re.compile(
    r"(?i)(?:\b(?:api|access|auth|secret|private|client|signing|session|bearer|app|account|master|license|"
    r"service|admin|root|deploy|webhook|integration|personal)?[ _\-]?(?:key|token|secret|password|passwd|pwd|"
    r"credentials?)s?\b|\bapikey\b|\bauthorization\b)[^\n]{0,24}$"
)
_HASH_CONTEXT = re.compile(
    r"(?i)\b(?:sha\d*|md5|hash(?:es|ed)?|digest|checksum|commit|rev|revision|fingerprint|etag|integrity|object|"
    r"blob|tree|cache|idempotency|uuid|ref|pgp|gpg|sum|build|public|primary|foreign|sort|partition|"
    r"row|record|trace|span|request|correlation|message|version|image|container|session[ _-]?id)\b"
)
_HEXISH = re.compile(r"^[0-9a-fA-F]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _context_repl(m: re.Match[str]) -> str:
    token = m.group(0)
    start = m.start()
    window = m.string[max(0, start - 48):start]
    nl = window.rfind("\n")
    if nl >= 0:
        window = window[nl + 1:]
    if not _KEY_CONTEXT.search(window) or _HASH_CONTEXT.search(window):
        return token
    core = token.rstrip("=")
    if _UUID.match(core) or core[:1] in "/-" or core.count("/") >= 2:
        return token
    if _HEXISH.match(core):
        return _mark("token") if len(core) >= 16 else token
    if not (any(c.isdigit() for c in core) and any(c.isalpha() for c in core)):
        return token
    if re.fullmatch(r"[a-z0-9]+(?:[_\-][a-z0-9]+)+", core) and len(re.findall(r"\d", core)) < 4:
        return token  # a lower-case identifier like user_v2_cache_key
    return _mark("token")


# 11. High-entropy tokens.
_CANDIDATE = re.compile(r"(?<![A-Za-z0-9+/_\-])[A-Za-z0-9+/_\-]{32,}={0,2}(?![A-Za-z0-9+/_\-])")
_HEX = re.compile(r"^[0-9a-fA-F\-]+$")
_CID_V0 = re.compile(r"^Qm[1-9A-HJ-NP-Za-km-z]{44}$")
_BTC_ADDRESS = re.compile(r"^[13][1-9A-HJ-NP-Za-km-z]{25,34}$")  # a public address, base58 (no 0 O I l)
_SRI = re.compile(r"^(?:sha(?:1|224|256|384|512))-")
_SSH_PUB_BEFORE = re.compile(r"(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-(?:ssh|ecdsa)[\w@.\-]*)[ \t]+$")
_PUBLIC_BLOCK = re.compile(r"-----BEGIN (?:[A-Z0-9 ]*PUBLIC KEY|CERTIFICATE|CERTIFICATE REQUEST|NEW CERTIFICATE "
                           r"REQUEST|X509 CRL|PKCS7|PGP PUBLIC KEY BLOCK|PGP SIGNATURE|SSH2 PUBLIC KEY)-----.*?"
                           r"(?:-----END [A-Z0-9 ]*-----|\Z)", re.DOTALL)


_DIGIT = re.compile(r"\d")
_DIGIT_RUN = re.compile(r"\d+")
_ALPHA = re.compile(r"[^\W\d_]")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_SYMBOL = re.compile(r"[^\w\s]|_")


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def looks_random(token: str) -> bool:
    """Whether a 32+ character token looks like a generated secret rather than a word or path."""
    core = token.rstrip("=")
    if _HEX.match(core):
        return False  # git shas, digests and UUIDs are kept (documented)
    if not (_UPPER.search(core) and _LOWER.search(core) and _DIGIT.search(core)):
        return False
    digit_runs = len(_DIGIT_RUN.findall(core))
    if "/" in core:
        # A path like /Users/Ann/Projects/App2/src is mixed-case too; random base64 has many
        # scattered digits, a path few.
        if digit_runs < 3 or max(len(seg) for seg in core.split("/")) < 12:
            return False
    elif digit_runs < 2:
        return False
    return entropy(core) >= 4.0


def encoded_text(token: str) -> bool:
    """Whether a base64 token decodes to readable text or JSON (encoded data, not a key)."""
    core = token.rstrip("=")
    if len(core) < 16 or len(core) > 65_536:
        return False
    alt = core.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(alt + "=" * (-len(alt) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    if not text:
        return False
    if not text.isprintable():
        printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
        if printable < 0.97 * len(text):
            return False
    stripped = text.lstrip()
    return stripped[:1] in "{[<" or " " in text


# A snake/kebab-case identifier of short lowercase parts (trusted-state keys, config names):
# generated tokens have a long random part or mixed case.
_IDENT_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}(?:[_\-][a-z0-9]{1,12}){1,6}$")


def secretish(value: str) -> bool:
    """Whether an assigned value could be a credential (not a word, path, number or reference)."""
    if len(value) < 6 or _NOT_SECRET.match(value) or "[REDACTED:" in value:
        return False
    if value[:1] in "/~." or value.startswith(("http://", "https://")) and "@" not in value:
        return False
    if _IDENT_NAME.match(value):
        return False  # i2c_wiring, m3x8-bolts: a name of short lowercase parts, not a credential
    if _DIGIT.search(value) and _ALPHA.search(value):
        return True
    return len(value) >= 16 and _UPPER.search(value) is not None and _LOWER.search(value) is not None


def _assign_repl(m: re.Match[str]) -> str:
    strength = _name_strength(m.group(3))
    if not strength:
        return m.group(0)
    redacted = _redacted_value(strength, m.group(3), m.group(4))
    return m.group(0) if redacted is None else m.group(1) + redacted


def _redacted_value(strength: int, name: str, value: str) -> str | None:
    """``value`` (quotes kept) with the secret replaced, or None when it is not a secret."""
    bare = value[1:-1] if value[:1] in "\"'" and len(value) > 1 and value[-1:] == value[:1] else value
    if "[REDACTED:" in bare or not bare:
        return None
    if strength == 2:
        if len(bare) < 4 or (_NOT_SECRET.match(bare) and not (bare.isdigit() and len(bare) >= 4)):
            return None
        if bare[:1] in "/~" and name.upper().endswith(("PWD", "DIR", "PATH")):
            return None
    elif not secretish(bare):
        return None
    quote = value[0] if len(bare) < len(value) else ""
    return quote + _mark("secret") + quote


def _xml_kv_repl(m: re.Match[str]) -> str:
    strength = _name_strength(m.group(3))
    redacted = _redacted_value(strength, m.group(3), m.group(5)) if strength else None
    return m.group(0) if redacted is None else m.group(1) + redacted + m.group(6)


def _xml_element_repl(m: re.Match[str]) -> str:
    strength = _name_strength(m.group(2))
    redacted = _redacted_value(strength, m.group(2), m.group(3).strip()) if strength else None
    return m.group(0) if redacted is None else m.group(1) + redacted + m.group(4)


def _cli_repl(m: re.Match[str]) -> str:
    value = m.group(3)
    if _NOT_SECRET.match(value) or "[REDACTED:" in value or value[:1] in "-/~" or value.startswith("./"):
        return m.group(0)
    flag = m.group(1).lower()
    if ("token" in flag or "key" in flag or flag.rstrip("= \t").endswith("auth")) and not secretish(value):
        return m.group(0)
    return m.group(1) + m.group(2) + _mark("secret") + m.group(2)


def _cmd_secret(secret: str) -> bool:
    return not ("[REDACTED:" in secret or _NOT_SECRET.match(secret) and not secret.isdigit())


def _cmd_repl(m: re.Match[str]) -> str:
    if not _cmd_secret(m.group("secret")):
        return m.group(0)
    s, e = m.span("secret")
    base = m.start()
    whole = m.group(0)
    return whole[: s - base] + _mark("password") + whole[e - base:]


def _redact_commands(text: str, low: str) -> str:
    spans: list[tuple[int, int]] = []
    for triggers, command, flag in _COMMANDS:
        if not any(t in low for t in triggers):
            continue
        pos = 0
        for cm in command.finditer(text):
            if cm.start() < pos:
                continue  # already inside a scanned segment
            end_m = _SEGMENT_END.search(text, cm.end())
            end = end_m.start() if end_m else len(text)
            for fm in flag.finditer(text, cm.end(), end):
                # a marker is never a secret, nor the "user" before one (idempotence)
                if _cmd_secret(fm.group("secret")) and "[REDACTED:" not in fm.group(0):
                    spans.append(fm.span("secret"))
            pos = end
    if not spans:
        return text
    spans.sort()
    out, last = [], 0
    for s, e in spans:
        if s < last:
            continue
        out.append(text[last:s])
        out.append(_mark("password"))
        last = e
    out.append(text[last:])
    return "".join(out)


def _auth_repl(m: re.Match[str]) -> str:
    value = m.group(3)
    if "[REDACTED:" in value or not any(c.isdigit() for c in value) and value.isalpha():
        return m.group(0)  # "Bearer authentication" is prose, not a token
    return m.group(1) + m.group(2) + _mark("token")


def _url_repl(m: re.Match[str]) -> str:
    if m.group(2).startswith("[REDACTED"):
        return m.group(0)
    return m.group(1) + _mark("password") + m.group(3)


def _bare_userinfo_repl(m: re.Match[str]) -> str:
    user, password, host = m.group(1), m.group(2), m.group(3)
    if user.lower() in _LABELS or "[REDACTED" in password or password.startswith("REDACTED"):
        return m.group(0)
    if _NOT_SECRET.match(password) and not (password.isdigit() and len(password) >= 4):
        return m.group(0)  # nginx:1.25@sha256:..., 10:30@home
    if re.match(r"(?i)sha\d+$|md5$|blake", host) or user.lower() in ("sha256", "sha512", "sha1"):
        return m.group(0)
    after = m.string[m.end():m.end() + 1]
    if not ("." in host or host.lower() == "localhost" or host.startswith("[") or after in (":", "/")):
        return m.group(0)
    host_core = host.rstrip(".")
    if "." in host_core and not re.search(r"\.[A-Za-z]{2,}$|^\d{1,3}(?:\.\d{1,3}){3}$|\.(?:internal|local|lan)$",
                                          host_core):
        if after not in (":", "/"):
            return m.group(0)  # file.v2@x.y.z-ish: not a host
    return user + ":" + _mark("password") + "@" + host


def _prose_repl(m: re.Match[str]) -> str:
    raw = m.group(5)
    value = _strip_trailing(raw)
    if not _prose_secret(m.group(2), value):
        return m.group(0)
    if m.group(3).strip() in ("", "to") and not _password_shaped(value):
        return m.group(0)  # "password reset", "password to log in": only a plainly generated value counts
    quote = m.group(4)
    return m.group(1) + quote + _mark("password") + raw[len(value):]


def _netrc_repl(m: re.Match[str]) -> str:
    value = m.group(2)
    if not _prose_secret("password", _strip_trailing(value)):
        return m.group(0)
    return m.group(1) + _mark("password")


def _public_spans(text: str) -> list[tuple[int, int]]:
    if "-----BEGIN " not in text:
        return []
    return [mm.span() for mm in _PUBLIC_BLOCK.finditer(text)]


def _entropy_repl_for(text: str):
    spans = _public_spans(text)

    def repl(m: re.Match[str]) -> str:
        token = m.group(0)
        if not looks_random(token):
            return token
        start = m.start()
        before = m.string[max(0, start - 40):start]
        if _BTC_ADDRESS.match(token) and re.search(r"(?i)\b(?:bitcoin|btc|address|wallet)\b", before):
            return token  # a public Bitcoin address, said to be one
        if before.endswith(("base64,", "h1:")) or _SRI.match(token) or _CID_V0.match(token):
            return token  # a data URI, a Go module sum, subresource integrity, an IPFS CID
        if "/" in token:
            parts = token.split("/")
            if any(_CID_V0.match(p) for p in parts) and not any(
                    len(p) >= 32 and looks_random(p) and not _CID_V0.match(p) for p in parts):
                return token  # an IPFS path: /ipfs/Qm.../readme
        if _SSH_PUB_BEFORE.search(before) and token.startswith("AAAA"):
            return token  # an SSH public key
        if spans and any(s <= start < e for s, e in spans):
            return token  # inside a certificate or public key block
        if encoded_text(token):
            return token  # base64 of JSON or prose
        return _mark("high-entropy")

    return repl


@lru_cache(maxsize=64)
def compile_extra(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Compile configured patterns; a bad one raises ``ValidationError`` naming it (fail closed)."""
    out = []
    for i, pat in enumerate(patterns):
        try:
            out.append(re.compile(pat))
        except re.error as exc:
            from .errors import ValidationError

            raise ValidationError(f"capture.redact_patterns[{i}]", f"{pat!r} is not a valid regular expression ({exc})") from None
    return tuple(out)


def _header_repl(m: re.Match[str]) -> str:
    value = m.group(2)
    if _NOT_SECRET.match(value) or "[REDACTED:" in value:
        return m.group(0)
    return m.group(1) + _mark("secret")


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
    low = text.lower()

    def has(*words: str) -> bool:
        return any(w in low for w in words)

    if "<private" in low:
        text = _PRIVATE.sub("", text)
    if "-----begin" in low:
        text = _PEM.sub(_mark("private-key"), text)
    for (kind, triggers, pat), repl in zip(_PREFIXED_RE, _PREFIXED_REPL):
        if any(t in text for t in triggers):
            text = pat.sub(repl, text)
    if "eyJ" in text:
        text = _JWT.sub(_mark("jwt"), text)
    if has("bearer", "basic", "token", "bot", "digest"):
        text = _AUTH_SCHEME.sub(_auth_repl, text)
    if "@" in text:
        if "://" in text:
            text = _URL_PASSWORD.sub(_url_repl, text)
        text = _BARE_USERINFO.sub(_bare_userinfo_repl, text)
    text = _redact_commands(text, low)
    if "pass:" in text:
        text = _OPENSSL_PASS.sub(_cmd_repl, text)
    secret_words = has(*_SECRET_TRIGGERS)
    if secret_words:
        text = _ASSIGN.sub(_assign_repl, text)
        if "value=" in low:
            text = _XML_KEY_VALUE.sub(_xml_kv_repl, text)
        if "</" in text:
            text = _XML_ELEMENT.sub(_xml_element_repl, text)
        if "-" in text:
            text = _CLI_FLAG.sub(_cli_repl, text)
        text = _HEADER_KEY.sub(_header_repl, text)
        text = _PROSE.sub(_prose_repl, text)
        if "password" in low:
            text = _NETRC.sub(_netrc_repl, text)
    extra = tuple(extra_patterns)
    if extra:
        for pat in compile_extra(extra):
            text = pat.sub(_extra_repl, text)
    if secret_words or has("authorization", "credential"):
        text = _CONTEXT_TOKEN.sub(_context_repl, text)
    return _CANDIDATE.sub(_entropy_repl_for(text), text)


def redact_value(value, extra_patterns: Iterable[str] = ()):
    """Redact every string inside a JSON-like value (dict keys are kept as they are)."""
    if isinstance(value, str):
        return redact(value, extra_patterns)
    if isinstance(value, dict):
        return {k: redact_value(v, extra_patterns) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, extra_patterns) for v in value]
    return value
