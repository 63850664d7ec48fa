"""Backup and restore of a chatd store (``chatd-admin backup`` / ``restore``)."""
