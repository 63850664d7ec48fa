"""Command-line tools: ``chatd-admin``."""
