"""Projects: registrations (reviewed), source refresh and project inference."""

from .infer import infer_project
from .refresh import RefreshReport, refresh, scan_sources, stage_project
from .registry import get_project, list_projects, projects, register_project, update_project

__all__ = ["infer_project", "RefreshReport", "refresh", "scan_sources", "stage_project", "get_project",
           "list_projects", "projects", "register_project", "update_project"]
