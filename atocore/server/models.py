"""Request bodies (pydantic): the OpenAPI document and the first line of input validation.

A context build's arguments are then checked by ``atocore.api.context_args`` (project, format).
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from ..api.requests import MAX_CWD_CHARS, MAX_PROMPT_CHARS, MAX_QUERY_CHARS
from ..context.build import DEFAULT_BUDGET, MAX_BUDGET, MIN_BUDGET


class _Body(BaseModel):
    # Strict on every endpoint alike: an unknown field is refused (a typo such as "budget" would
    # otherwise be silently ignored), and no value is coerced ("yes" is not true, "1000" is not
    # 1000). The error names the field and what is allowed (server/errors.py).
    model_config = ConfigDict(extra="forbid", strict=True)


class SearchRequest(_Body):
    query: str = Field(..., max_length=MAX_QUERY_CHARS, description="What to look for")
    project: Optional[str] = Field(None, max_length=64, description="Filter to this project; null = infer and prefer")
    k: int = Field(10, ge=1, le=100, description="How many hits")


class ContextRequest(_Body):
    prompt: str = Field(..., max_length=MAX_PROMPT_CHARS, description="The user's prompt")
    project: Optional[str] = Field(None, max_length=64, description="Project id; null = infer from the prompt/cwd")
    budget_chars: int = Field(DEFAULT_BUDGET, ge=MIN_BUDGET, le=MAX_BUDGET, description="Size limit of `context`")
    format: str = Field("markdown", max_length=64, description="Output format (GET /formats lists them)")
    cwd: Optional[str] = Field(None, max_length=MAX_CWD_CHARS, description="The assistant's working directory (a project hint)")


class MemoryRequest(_Body):
    text: str = Field(..., max_length=8000)
    type: str = Field(..., description="identity, preference, project, episodic, knowledge or adaptation")
    project: Optional[str] = Field(None, max_length=64)
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    source: str = Field("api", max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)


class SourceRequest(_Body):
    path: str = Field(..., max_length=1000)
    include: Optional[list[str]] = Field(None, max_length=50)
    exclude: Optional[list[str]] = Field(None, max_length=50)


class ProjectRequest(_Body):
    id: str = Field(..., max_length=64)
    sources: list[SourceRequest] = Field(..., min_length=1, max_length=20)
    name: Optional[str] = Field(None, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=30)
    description: str = Field("", max_length=2000)
    approve: bool = False


class RefreshRequest(_Body):
    project: Optional[str] = Field(None, max_length=64, description="null = every registered project")
    wait: float = Field(0.0, ge=0.0, le=600.0, description="Seconds to wait for a running refresh")


class ApproveRequest(_Body):
    reviewer: Optional[str] = Field(None, max_length=200, description="'Name <email>'")
    head: Optional[str] = Field(None, min_length=7, max_length=64, pattern="^[0-9a-fA-F]+$",
                                description="Only approve if the review branch is still at this sha (prefix)")


class RejectRequest(_Body):
    reason: str = Field(..., min_length=1, max_length=2000)
    reviewer: Optional[str] = Field(None, max_length=200)


class BackupRequest(_Body):
    remote: Optional[str] = Field(None, max_length=1000, description="Remote name from the store config, or a path/URL")


class RestoreRequest(_Body):
    rev: str = Field(..., min_length=1, max_length=200)
    dry_run: bool = False
