"""Did every socket get every acked message of a room once, in seq order, as the store has it?

SPEC.md's guarantee across processes, checked the same way in every multi-process test:
the messages a socket received (its ``joined`` history, then live ``message`` frames, in
arrival order, over one or more sockets of one client that reconnected with ``since``) must
be consecutive seqs with nothing missing up to the store's last message, and each must be
the stored message (same author and text).
"""

from __future__ import annotations


def seen(sockets, room: str = "lobby") -> list[dict]:
    """The messages of ``room`` that ``sockets`` (one client's sockets, oldest first) received, in order."""
    messages = []
    for ws in sockets:
        for frame in ws.received:
            if frame.get("room") != room:
                continue
            if frame.get("type") == "joined":
                messages.extend(frame.get("history", []))
            elif frame.get("type") == "message":
                messages.append(frame)
    return messages


async def stored(http, token: str, room: str = "lobby") -> list[dict]:
    """Every message of ``room`` in the store (through the REST history), oldest first."""
    messages, before = [], None
    while True:
        path = f"/api/rooms/{room}/messages?limit=200" + (f"&before={before}" if before else "")
        response = await http.request("GET", path, token=token)
        assert response.status == 200, response
        page = response.json()
        messages.extend(page["messages"])
        before = page.get("next_before")
        if before is None:
            break
    return sorted(messages, key=lambda message: message["seq"])


def problems(name: str, received: list[dict], in_store: list[dict], first: int | None = None) -> list[str]:
    """What is wrong with what ``name`` received (empty if nothing): duplicates, disorder, gaps,
    messages missing at the end, or messages that differ from the store. ``first`` is the seq the
    client should have started from (default: whatever it saw first)."""
    found = []
    seqs = [message["seq"] for message in received]
    if len(set(seqs)) != len(seqs):
        found.append(f"{name}: duplicates {sorted({s for s in seqs if seqs.count(s) > 1})[:10]}")
    if seqs != sorted(seqs):
        found.append(f"{name}: out of order near {next(a for a, b in zip(seqs, seqs[1:]) if b < a)}")
    last = in_store[-1]["seq"] if in_store else 0
    start = first if first is not None else (min(seqs) if seqs else last + 1)
    missing = sorted(set(range(start, last + 1)) - set(seqs))
    if missing:
        found.append(f"{name}: missing {len(missing)} (first {missing[:10]}) of {start}..{last}")
    by_seq = {message["seq"]: message for message in in_store}
    for message in received:
        truth = by_seq.get(message["seq"])
        if truth is None:
            found.append(f"{name}: seq {message['seq']} is not in the store")
        elif (message.get("user"), message.get("text")) != (truth.get("user"), truth.get("text")):
            found.append(f"{name}: seq {message['seq']} differs from the store")
    return found


def check(test, clients: dict, in_store: list[dict], room: str = "lobby", first: dict | None = None) -> None:
    """Fail ``test`` with every problem of every client (name → its sockets, oldest first)."""
    found = []
    for name, sockets in clients.items():
        found += problems(name, seen(sockets, room), in_store, (first or {}).get(name))
    test.assertEqual(found, [], "deliveries differ from the store")
