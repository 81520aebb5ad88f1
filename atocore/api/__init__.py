"""The query layer (docs/interfaces.md): one place for search, context, state, projects, memories
and the token rule, called by the HTTP routes (atocore/server/routes), the MCP tools
(atocore/mcp), the CLI and the review pages alike."""

from .auth import Forbidden, Unauthorized, check_token, token_matches
from .query import INDEX_BUILDING, INDEX_UNAVAILABLE, Api, IndexUnavailable, search_payload
from .remember import propose_memory
from .requests import MAX_PROMPT_CHARS, MAX_QUERY_CHARS, ContextArgs, context_args, project_arg

__all__ = ["Api", "ContextArgs", "Forbidden", "INDEX_BUILDING", "INDEX_UNAVAILABLE", "IndexUnavailable", "MAX_PROMPT_CHARS",
           "MAX_QUERY_CHARS", "Unauthorized", "check_token", "context_args", "project_arg", "propose_memory",
           "search_payload", "token_matches"]
