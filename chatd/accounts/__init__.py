"""Accounts: registration, login, tokens, passwords, users and moderation (domain; no HTTP, no Mongo)."""
