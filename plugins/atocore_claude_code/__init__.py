"""Built-in AtoCore plugin (placeholder until implemented)."""
