"""A plugin distribution that breaks on purpose; see README.md next to this package."""
