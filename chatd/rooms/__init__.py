"""Rooms as records: who may do what in a room (``access``), and what the REST API does with them."""
