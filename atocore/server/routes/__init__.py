"""The HTTP routes: thin APIRouter modules that parse a request, call the query layer
(atocore/api) or the service, and return its payload. Binding shapes: ../shared/DESIGN.md."""

from . import admin, context, records

ROUTERS = (context.router, records.router, admin.router)

__all__ = ["ROUTERS"]
