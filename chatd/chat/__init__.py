"""The chat: sockets, rooms, messages, presence, typing, receipts, history (domain; no Autobahn, no Mongo)."""
