"""Fails at import, like a plugin whose optional native dependency is missing."""
raise ImportError("gemkit-broken needs libfoo, which is not installed")
