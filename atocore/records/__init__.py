"""The record types of a store, their file formats and their validation (one module each).

Every write path calls one of the ``*_from_dict`` / ``parse_*`` functions before anything is
committed, so a bad field is reported (naming the field and the allowed values) and nothing
is written. The same functions check files that arrive by ``git push``.
"""

from __future__ import annotations

# One module per job: the validation engine (fields), front matter, and one per record type.
from .fields import (MAX_DESCRIPTION_CHARS, MAX_MEMORY_CHARS, MAX_SHORT_CHARS, MAX_STATE_VALUE_CHARS,
    MAX_TURN_CHARS, MEMORY_STATUSES, MEMORY_TYPES, PROJECT_STATUSES, STATE_CATEGORIES, Field, check_fields,
    decode_text, nonblank, now_iso, short_strings, timestamp, unit_interval, yaml_dump, yaml_load)
from .frontmatter import (dump_front_matter, split_front_matter)
from .memory import (MEMORY_FIELDS, Memory, memory_from_dict, memory_path, parse_memory)
from .state import (MAX_STATE_ENTRIES, STATE_ENTRY_FIELDS, STATE_FILE_FIELDS, ProjectState, StateEntry,
    parse_state, state_entry_from_dict, state_path)
from .project import (DEFAULT_INCLUDE, PROJECT_FIELDS, SOURCE_ROOT_FIELDS, Project, SourceRoot, parse_project,
    project_from_dict, project_path)
from .interaction import (INTERACTION_FIELDS, Interaction, interaction_from_dict, interaction_path,
    parse_interactions)
from .golden import (GOLDEN_FILE_FIELDS, GOLDEN_PREFIX, GOLDEN_QUESTION_FIELDS, MAX_GOLDEN_QUESTIONS,
    MAX_QUESTION_CHARS, GoldenQuestion, golden_question_from_dict, parse_golden)  # noqa: F401 - the package's API


def validate_path(path: str, raw: bytes) -> object | None:
    """Parse and validate a store file by where it lives; ``None`` for files with no schema.

    Raises ``ValidationError`` for a file that breaks its schema. Used for review branches
    and for content that reaches main by a push, which is then reported and not indexed.
    """
    if path.startswith("memories/") and path.endswith(".md"):
        return parse_memory(raw, path)
    if path.startswith("state/") and path.endswith(".yaml"):
        return parse_state(raw, path)
    if path.startswith("projects/") and path.endswith(".yaml"):
        return parse_project(raw, path)
    if path.startswith("interactions/") and path.endswith(".jsonl"):
        return parse_interactions(raw, path)
    if path.startswith(GOLDEN_PREFIX) and path.endswith((".yaml", ".yml")):
        return parse_golden(raw, path)
    if path == "atocore.yaml":
        from ..config import validate_config  # the same schema as at start-up

        return validate_config(raw)
    return None
