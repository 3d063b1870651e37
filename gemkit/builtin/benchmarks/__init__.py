"""Built-in benchmark adapters, each a plugin module."""
