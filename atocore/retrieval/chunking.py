"""Turn store files into index chunks.

Markdown is split at headings (the heading path becomes the chunk title), reStructuredText at
section titles, plain text by paragraphs; any section longer than ``max_chars`` is packed
paragraph by paragraph into pieces of at most ``max_chars`` with a small overlap. Memories,
trusted-state entries and captured interactions become chunks of their own kinds.
Every chunk keeps provenance: its store path and 1-based inclusive line range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .. import records
from ..errors import ValidationError

TEXT_SUFFIXES = {".md", ".markdown", ".mdx", ".txt", ".rst", ".text", ""}
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}


@dataclass(frozen=True)
class Chunk:
    id: str
    kind: str  # chunk | memory | state
    project: str | None
    source: str  # what a person recognises: path in the source root, memories/<id>.md, ...
    title: str
    text: str
    path: str  # store path of the file the chunk came from
    origin: str  # source | memory | state | interaction
    lines: tuple[int, int] | None = None

    @property
    def embed_text(self) -> str:
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[str]
    start: int  # 1-based line number of lines[0]
    heading_lines: int = 0  # how many of ``lines`` are the heading itself


# --------------------------------------------------------------------------- splitting text

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def markdown_sections(text: str) -> list[Section]:
    lines = text.splitlines()
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    cur: list[str] = []
    cur_start = 1
    heading_n = 0
    fence: str | None = None

    def flush(end: int) -> None:
        title = " > ".join(t for _, t in path)
        sections.append(Section(title, cur[:], cur_start, heading_n))

    i = 0
    while i < len(lines):
        line = lines[i]
        m_fence = _FENCE.match(line)
        if m_fence:
            fence = None if fence == m_fence.group(1) else (fence or m_fence.group(1))
        heading: tuple[int, str] | None = None
        if fence is None and not m_fence:
            m = _ATX.match(line)
            if m:
                heading = (len(m.group(1)), m.group(2).strip())
            elif (line.strip() and i + 1 < len(lines) and _SETEXT.match(lines[i + 1])
                  and not _ATX.match(line) and (not cur or not cur[-1].strip())):
                heading = (1 if lines[i + 1].strip()[0] == "=" else 2, line.strip())
        if heading is not None:
            flush(i)
            nonlocal_heading = 2 if not _ATX.match(line) else 1
            level, title = heading
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, title))
            setext = not _ATX.match(line)
            cur = [line] + ([lines[i + 1]] if setext else [])
            heading_n = nonlocal_heading
            cur_start = i + 1
            i += 2 if setext else 1
            continue
        cur.append(line)
        i += 1
    flush(len(lines))
    return sections


_RST_ADORN = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")


def rst_sections(text: str) -> list[Section]:
    lines = text.splitlines()
    styles: list[tuple[str, bool]] = []
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    cur: list[str] = []
    cur_start = 1
    heading_n = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        title = None
        consumed = 0
        over = _RST_ADORN.match(line)
        if (over and i + 2 < len(lines) and lines[i + 1].strip() and _RST_ADORN.match(lines[i + 2])
                and lines[i + 2].strip()[0] == line.strip()[0]):
            title, style, consumed = lines[i + 1].strip(), (line.strip()[0], True), 3
        elif (line.strip() and not over and i + 1 < len(lines) and _RST_ADORN.match(lines[i + 1])
              and len(lines[i + 1].strip()) >= len(line.strip()) and (not cur or not cur[-1].strip())):
            title, style, consumed = line.strip(), (lines[i + 1].strip()[0], False), 2
        if title is None:
            cur.append(line)
            i += 1
            continue
        sections.append(Section(" > ".join(t for _, t in path), cur, cur_start, heading_n))
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title))
        cur = lines[i:i + consumed]
        heading_n = consumed
        cur_start = i + 1
        i += consumed
    sections.append(Section(" > ".join(t for _, t in path), cur, cur_start, heading_n))
    return sections


def _paragraphs(lines: list[str], start: int) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of each blank-line separated paragraph."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    first = start
    for n, line in enumerate(lines, start):
        if line.strip():
            if not buf:
                first = n
            buf.append(line)
        elif buf:
            out.append((first, n - 1, "\n".join(buf)))
            buf = []
    if buf:
        out.append((first, start + len(lines) - 1, "\n".join(buf)))
    return out


def _hard_split(first: int, last: int, text: str, max_chars: int) -> list[tuple[int, int, str]]:
    """Split one over-long paragraph at line, then sentence, then word boundaries."""
    pieces: list[tuple[int, int, str]] = []
    lines = text.split("\n")
    if len(lines) > 1:
        for n, line in enumerate(lines, first):
            pieces.extend(_hard_split(n, n, line, max_chars) if len(line) > max_chars else [(n, n, line)])
        return pieces
    rest = text
    while len(rest) > max_chars:
        cut = max(rest.rfind(". ", 0, max_chars), rest.rfind(" ", 0, max_chars))
        cut = cut + 1 if cut > max_chars // 3 else max_chars
        pieces.append((first, last, rest[:cut].strip()))
        rest = rest[cut:]
    if rest.strip():
        pieces.append((first, last, rest.strip()))
    return pieces


def pack(lines: list[str], start: int, max_chars: int, overlap: int) -> list[tuple[int, int, str]]:
    """Pack paragraphs into pieces of at most ``max_chars``; carry ``overlap`` chars of tail."""
    paras: list[tuple[int, int, str]] = []
    for p in _paragraphs(lines, start):
        paras.extend(_hard_split(*p, max_chars) if len(p[2]) > max_chars else [p])
    out: list[tuple[int, int, str]] = []
    cur: list[tuple[int, int, str]] = []
    size = 0
    for p in paras:
        if cur and size + len(p[2]) + 2 > max_chars:
            out.append((cur[0][0], cur[-1][1], "\n\n".join(x[2] for x in cur)))
            # overlap: the previous piece's last paragraph tail (if short enough) leads the next
            tail = cur[-1]
            cur, size = [], 0
            if overlap and len(tail[2]) <= overlap and len(tail[2]) + len(p[2]) + 2 <= max_chars:
                cur, size = [tail], len(tail[2]) + 2
            elif overlap:
                snippet = tail[2][-overlap:]
                cut = snippet.find(" ")
                snippet = snippet[cut + 1:] if 0 <= cut < len(snippet) - 1 else snippet
                if snippet and len(snippet) + 1 + len(p[2]) + 2 <= max_chars:
                    # the snippet is a suffix of the tail: it starts as many lines up as it has breaks
                    cur, size = [(tail[1] - snippet.count("\n"), tail[1], "…" + snippet)], len(snippet) + 3
        cur.append(p)
        size += len(p[2]) + 2
    if cur:
        out.append((cur[0][0], cur[-1][1], "\n\n".join(x[2] for x in cur)))
    return out


def split_document(text: str, suffix: str, max_chars: int = 1500, overlap: int = 0,
                   default_title: str = "") -> list[tuple[str, int, int, str]]:
    """(title, first line, last line, text) for each chunk of a text document."""
    suffix = suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        sections = markdown_sections(text)
    elif suffix == ".rst":
        sections = rst_sections(text)
    else:
        sections = [Section("", text.splitlines(), 1)]
    out = []
    for sec in sections:
        title = sec.title or default_title
        if not any(ln.strip() for ln in sec.lines[sec.heading_lines:]):
            continue  # a heading with no text of its own: its title lives on in its children
        for first, last, body in pack(sec.lines, sec.start, max_chars, overlap):
            out.append((title, first, last, body))
    return out


# --------------------------------------------------------------------------- store files -> chunks


class Skip(Exception):
    """The file is not indexed (not text); not an error."""


def chunks_for_file(path: str, raw: bytes, max_chars: int = 1500, overlap: int = 0) -> list[Chunk]:
    """The chunks of one store file. Raises ``ValidationError`` for a file that breaks its schema."""
    parsed = records.validate_path(path, raw)
    if path.startswith("memories/") and path.endswith(".md"):
        mem: records.Memory = parsed  # type: ignore[assignment]
        if mem.status != "active":
            return []
        title = f"{mem.type} memory" + (f" [{', '.join(mem.tags)}]" if mem.tags else "")
        return [Chunk(mem.id, "memory", mem.project, path, title, mem.text, path, "memory")]
    if path.startswith("state/") and path.endswith(".yaml"):
        state: records.ProjectState = parsed  # type: ignore[assignment]
        return [Chunk(f"state:{state.project}:{e.key}", "state", state.project, f"{path}#{e.key}",
                      f"{state.project} {e.category}: {e.key.replace('-', ' ').replace('_', ' ')}",
                      e.value, path, "state") for e in state.entries]
    if path.startswith("interactions/") and path.endswith(".jsonl"):
        out = []
        inters: list[records.Interaction] = parsed  # type: ignore[assignment]
        line_of = _jsonl_lines(raw)
        for n, inter in enumerate(inters):
            body = f"Q: {inter.prompt.strip()}\nA: {inter.response.strip()}"
            line = line_of[n] if n < len(line_of) else None
            title = f"{inter.source} session {inter.session_id}"
            pieces = pack(body.splitlines(), 1, max_chars, overlap)
            for i, (_, _, text) in enumerate(pieces):
                cid = f"{path}#{inter.id}" + (f"~{i}" if i else "")
                out.append(Chunk(cid, "chunk", inter.project, f"{path}#{inter.id}", title, text, path,
                                 "interaction", (line, line) if line else None))
        return out
    parts = path.split("/")
    if parts[0] != "sources" or len(parts) < 3:
        return []  # config, registrations, READMEs: validated above, not indexed
    project, rel = parts[1], "/".join(parts[2:])
    suffix = PurePosixPath(rel).suffix
    if suffix.lower() not in TEXT_SUFFIXES and not _looks_textual(raw):
        raise Skip(f"{path}: not a text document")
    if b"\x00" in raw[:8192]:
        raise Skip(f"{path}: binary content")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(path, f"is not valid UTF-8 (bad byte at offset {exc.start})") from None
    out = []
    for i, (title, first, last, body) in enumerate(
            split_document(text, suffix, max_chars, overlap, default_title=PurePosixPath(rel).name)):
        out.append(Chunk(f"{path}#{i}", "chunk", project, rel, title, body, path, "source", (first, last)))
    return out


def _looks_textual(raw: bytes) -> bool:
    head = raw[:4096]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte char cut at the boundary
    return True


def _jsonl_lines(raw: bytes) -> list[int]:
    return [n for n, line in enumerate(raw.split(b"\n"), 1) if line.strip()]
