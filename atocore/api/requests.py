"""Checking what a caller asks for, once, before any work: project names and context requests.

``context_args`` is the one check of a context build's arguments (the HTTP fast path, the
FastAPI route after its body model, the CLI and the MCP tool all call it); ``project_arg`` is
the slug helper every query entry point uses for an optional project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..ids import check_slug

MAX_QUERY_CHARS = 20_000
MAX_PROMPT_CHARS = 100_000
MAX_CWD_CHARS = 4096
CONTEXT_FIELDS = ("prompt", "project", "budget_chars", "format", "cwd")


def project_arg(value: str | None, field: str = "project") -> str | None:
    """An optional project id: None for "not given", else a valid slug."""
    return None if value is None else check_slug(value, field)


@dataclass(frozen=True)
class ContextArgs:
    prompt: str
    project: str | None = None
    budget_chars: int | None = None  # None: DEFAULT_BUDGET
    format: str = "markdown"
    cwd: str | None = None


def context_args(data: Any) -> ContextArgs:
    """The arguments of a context build from a JSON-like object, checked (strict types, no
    coercion, no unknown field); a ValidationError names the first field that is wrong."""
    from ..context.build import DEFAULT_BUDGET, MAX_BUDGET, MIN_BUDGET
    from ..context.formats import get_format

    if type(data) is not dict:
        raise ValidationError("body", "must be a JSON object")
    unknown = [k for k in data if k not in CONTEXT_FIELDS]
    if unknown:
        raise ValidationError(str(unknown[0]), "unknown field", list(CONTEXT_FIELDS))
    if "prompt" not in data:
        raise ValidationError("prompt", "is required")
    prompt = data["prompt"]
    if type(prompt) is not str or len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError("prompt", f"must be text of at most {MAX_PROMPT_CHARS} characters")
    project = data.get("project")
    if project is not None and type(project) is not str:
        raise ValidationError("project", "must be text")
    budget = data.get("budget_chars", DEFAULT_BUDGET)
    if type(budget) is not int or not MIN_BUDGET <= budget <= MAX_BUDGET:
        raise ValidationError("budget_chars", f"must be a JSON integer from {MIN_BUDGET} to {MAX_BUDGET}")
    fmt = data.get("format", "markdown")
    if type(fmt) is not str:
        raise ValidationError("format", "must be text")
    get_format(fmt)  # an unknown one: ValidationError naming the formats there are
    cwd = data.get("cwd")
    if cwd is not None and (type(cwd) is not str or len(cwd) > MAX_CWD_CHARS):
        raise ValidationError("cwd", f"must be text of at most {MAX_CWD_CHARS} characters")
    return ContextArgs(prompt, project_arg(project), budget, fmt, cwd)
