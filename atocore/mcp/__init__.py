"""AtoCore's MCP tools (docs/mcp.md): ``server`` (the tools and their text), ``backends`` (where
answers come from: the query layer in this process, or a running service over HTTP) and ``http``
(the ``/mcp`` endpoint of the service). Nothing here is imported on the CLI's hook path, and
only ``server`` imports the MCP SDK."""
