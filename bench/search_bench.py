"""Search benchmark (issue 13): GET /api/search latency over 200,000 messages in 500 rooms on the embedded store.

Phase 1, once (cached under ``--dir``; ``--rebuild`` starts again): a real chatd (twistd, embedded nx-27017 in
``<dir>/data``) registers the users and creates the rooms through its REST API (the last ``--private`` rooms
private, the reader a member of a fifth of them) and is stopped; then the messages are bulk-inserted in the shape
chatd's store writes them (``chatd.storage.mongo_chat._message_doc``, so ``ix: 0``: not indexed yet) through the
same nx child program chatd runs, on the same files. Texts: 5–20 words drawn Zipf-like from ~100 English function
words and ~4,000 made-up words, some capitalised or punctuated, 1 % of messages deleted. Store size measured.

Phase 2: chatd is started on that data dir; its index sweep writes every message's postings; the time until no
message is left at ``ix: 0`` is the indexing time (only on the first run: later runs reuse the index). Store
size measured again: the growth is the index's cost.

Phase 3: one client signed in as the reader (who may read the public rooms and some private ones) sends
``--queries`` searches of each kind, one at a time: ``rare`` (a word of rank 1,500–4,000), ``common`` (rank
1–30), ``two`` (a common and a mid word), ``prefix2`` (two letters), ``word+prefix`` (a mid word and a
three-letter prefix), ``nohit`` (a word that occurs nowhere), ``next`` (pages 2–5 of a common word through
``next``), ``room`` (a common word in one room). p50/p99/max per kind and overall.

Everything on 127.0.0.1; chatd and the loading nx child are this script's children, stopped by pid (and their
process group) in ``finally``; every wait is bounded. Standard library plus the venv's pymongo and chatd.

    .venv/bin/python bench/search_bench.py --dir /tmp/search-bench            # build once, then measure
    .venv/bin/python bench/search_bench.py --dir /tmp/search-bench --queries 100 --json /tmp/search.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchserver import ServerProcess, free_port  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from chatd.storage.mongo_chat import _message_doc  # noqa: E402
from chatd.storage.nx_auth import Credentials  # noqa: E402
from chatd.storage.records import Message  # noqa: E402

ENGLISH = ("the to and a of i you it is in that for on we this be have with are not at so but was do my can "
           "just it's what all will if me get about like up there one they know out think no your from good "
           "would how when now see then go ok time as an by has more some here today did need any make yes "
           "our back them new thanks really who also only want could let after still right first because "
           "meeting deploy build team release issue fix call week").split()
PASSWORD = "bench-password"
AUTHORS = 8


def vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """ENGLISH first (the commonest), then made-up words of 2–4 syllables, all distinct."""
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["ch", "sh", "qu", "st", "tr", "an", "or", "el"]
    words = list(dict.fromkeys(ENGLISH))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def zipf_weights(n: int, s: float = 1.05) -> list[float]:
    return [1 / (rank ** s) for rank in range(1, n + 1)]


def request(port: int, method: str, path: str, body=None, token: str | None = None, conn=None):
    """One HTTP request on 127.0.0.1 (a kept connection if given): (status, parsed JSON or None, seconds)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    conn.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
    response = conn.getresponse()
    raw = response.read()
    elapsed = time.perf_counter() - started
    if own:
        conn.close()
    return response.status, (json.loads(raw) if raw else None), elapsed


def start_chatd(root: Path) -> ServerProcess:
    port = free_port()
    argv = [str(Path(sys.executable).with_name("twistd")), "-n", "--pidfile=", "chatd", "--data-dir", str(root / "data"),
            "--listen", f"tcp:{port}:interface=127.0.0.1", "--bcrypt-cost", "4", "--auth-rate", "0"]
    server = ServerProcess(argv, port=port, log_path=root / "chatd.log", name="chatd")
    server.start()
    server.wait_healthy(120)
    return server


def store_client(root: Path) -> MongoClient:
    """pymongo on the running embedded store (its URI, with the password, from the data dir; never printed)."""
    uri = (root / "data" / "store-uri").read_text().strip()
    return MongoClient(uri, authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=10000)


def store_bytes(root: Path) -> int:
    """The embedded store's SQLite files (with WAL), all databases."""
    return sum(p.stat().st_size for p in (root / "data" / "store").iterdir() if p.is_file())


def run_nx(root: Path) -> tuple[subprocess.Popen, str]:
    """The nx child program with chatd's own options on chatd's files (chatd stopped), for the bulk load."""
    data = root / "data"
    credentials = Credentials.read(data / "store-credentials")
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "chatd.storage.nx_child", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(data / "store"), "--pid-file", str(data / "nx-27017.pid"),
         "--log-file", str(data / "nx-27017.log"), "--auth-file", str(data / "store-credentials")],
        cwd=str(data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return child, credentials.uri("127.0.0.1", port, "chatd")


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def build(root: Path, args, rng: random.Random, vocab: list[str]) -> dict:
    """Phase 1: users and rooms through chatd, then the messages bulk-inserted; returns the corpus facts."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    server = start_chatd(root)
    try:
        users = {}
        for name in ["owner", "reader"] + [f"author{i}" for i in range(AUTHORS)]:
            status, body, _ = request(server.port, "POST", "/api/auth/register",
                                      {"username": name, "email": f"{name}@bench.example", "password": PASSWORD})
            assert status == 201, (status, body)
            users[name] = {"id": body["user"]["id"], "token": body["token"]}
        owner = users["owner"]["token"]
        rooms, readable = [f"room-{i:03d}" for i in range(args.rooms)], []
        for i, room in enumerate(rooms):
            private = i >= args.rooms - args.private
            status, body, _ = request(server.port, "POST", "/api/rooms",
                                      {"name": room, "visibility": "private" if private else "public"}, owner)
            assert status == 201, (status, body)
            if private and i % 5 == 0:
                status, body, _ = request(server.port, "POST", f"/api/rooms/{room}/members", {"user": "reader"}, owner)
                assert status == 201, (status, body)
            if not private or i % 5 == 0:
                readable.append(room)
    finally:
        server.close()
    child, uri = run_nx(root)
    try:
        client = MongoClient(uri, authMechanism="SCRAM-SHA-1", serverSelectionTimeoutMS=20000)
        db = client.chatd
        room_weights = zipf_weights(len(rooms), 0.6)
        word_weights = zipf_weights(len(vocab))
        authors = [(users[f"author{i}"]["id"], f"author{i}") for i in range(AUTHORS)]
        seqs = dict.fromkeys(rooms, 0)
        start = datetime.now(timezone.utc) - timedelta(days=180)
        step = timedelta(days=180) / args.messages
        batch, loaded, began = [], 0, time.monotonic()
        for n in range(args.messages):
            room = rng.choices(rooms, room_weights)[0]
            seqs[room] += 1
            picked = rng.choices(vocab, word_weights, k=rng.randint(5, 20))
            text = " ".join(w.capitalize() if rng.random() < 0.05 else w for w in picked)
            if rng.random() < 0.3:
                text += rng.choice([".", "!", "?", " :)", "..."])
            user_id, user = rng.choice(authors)
            deleted = rng.random() < 0.01
            message = Message(room, seqs[room], user_id, user, start + n * step + timedelta(microseconds=rng.randint(0, 999)),
                              None if deleted else text, deleted=deleted)
            batch.append(_message_doc(message))
            if len(batch) == 5000 or n == args.messages - 1:
                db.messages.insert_many(batch, ordered=False)
                loaded += len(batch)
                batch = []
                print(f"  loaded {loaded} messages ({time.monotonic() - began:.0f} s)", flush=True)
        for room, seq in seqs.items():
            if seq:
                db.rooms.update_one({"_id": room}, {"$max": {"last_seq": seq, "last_message_at": start + timedelta(days=180)}})
        client.close()
    finally:
        stop(child)
    facts = {"messages": args.messages, "rooms": args.rooms, "private_rooms": args.private,
             "readable_rooms": len(readable), "authors": AUTHORS, "vocabulary": len(vocab),
             "load_seconds": round(time.monotonic() - began, 1), "store_bytes_before_index": store_bytes(root)}
    (root / "corpus.json").write_text(json.dumps(facts, indent=1))
    return facts


def wait_indexed(root: Path, limit: float) -> float:
    """Seconds until no message is left at ix 0 (chatd's sweep writing the postings)."""
    client = store_client(root)
    began = time.monotonic()
    try:
        while time.monotonic() - began < limit:
            left = client.chatd.command("count", "messages", query={"ix": 0})["n"]  # count_documents: seconds on nx
            print(f"  {left} messages not indexed yet ({time.monotonic() - began:.0f} s)", flush=True)
            if left == 0:
                return time.monotonic() - began
            time.sleep(5)
        raise SystemExit(f"indexing not done within {limit:.0f} s")
    finally:
        client.close()


def index_stats(root: Path) -> dict:
    client = store_client(root)
    try:
        db = client.chatd
        stats = {"postings": db.postings.estimated_document_count()}
        for name in ("messages", "postings"):
            try:
                found = db.command("collStats", name)
                stats[f"{name}_collStats"] = {k: found.get(k) for k in ("count", "size", "storageSize", "totalIndexSize")}
            except Exception as e:  # noqa: BLE001 - nx may not answer collStats
                stats[f"{name}_collStats"] = f"not answered ({type(e).__name__})"
        return stats
    finally:
        client.close()


def queries(rng: random.Random, vocab: list[str], count: int) -> dict[str, list[dict]]:
    """Parameters of each kind of query, ``count`` of each (``next`` is derived while running)."""
    common, mid, rare = vocab[:30], vocab[100:1500], vocab[1500:]
    kinds = {
        "rare": [{"q": rng.choice(rare)} for _ in range(count)],
        "common": [{"q": rng.choice(common)} for _ in range(count)],
        "two": [{"q": f"{rng.choice(common)} {rng.choice(mid)}"} for _ in range(count)],
        "prefix2": [{"q": rng.choice(vocab[:600])[:2]} for _ in range(count)],
        "word+prefix": [{"q": f"{rng.choice(mid)} {rng.choice(vocab[:600])[:3]}"} for _ in range(count)],
        "nohit": [{"q": "zq" + "".join(rng.choice("xjq") for _ in range(5))} for _ in range(count)],
        "room": [{"q": rng.choice(common), "room": f"room-{rng.randrange(0, 400):03d}"} for _ in range(count)],
    }
    return kinds


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def measure(port: int, token: str, kinds: dict, deadline: float) -> dict[str, list[tuple[float, int]]]:
    """Each query once, one at a time on one kept connection: {kind: [(ms, results)]}."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    timings: dict[str, list[tuple[float, int]]] = {kind: [] for kind in [*kinds, "next"]}
    order = [(kind, params) for kind, items in kinds.items() for params in items]
    random.Random(7).shuffle(order)
    try:
        for kind, params in order:
            if time.monotonic() > deadline:
                print("  time limit reached: stopping the queries", flush=True)
                break
            status, body, took = request(port, "GET", "/api/search?" + urllib.parse.urlencode(params), token=token, conn=conn)
            assert status == 200, (status, body, params)
            timings[kind].append((took * 1000, len(body["results"])))
            if kind == "common":  # pages 2–5 through next
                for _ in range(4):
                    if not body["next"]:
                        break
                    status, body, took = request(port, "GET", "/api/search?" + urllib.parse.urlencode(
                        {**params, "before": body["next"]}), token=token, conn=conn)
                    assert status == 200, (status, body)
                    timings["next"].append((took * 1000, len(body["results"])))
    finally:
        conn.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default="/tmp/chatd-search-bench", help="the cached corpus and data dir")
    parser.add_argument("--rebuild", action="store_true", help="build the corpus again even if cached")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--private", type=int, default=100, help="how many of the rooms are private")
    parser.add_argument("--queries", type=int, default=50, help="queries of each kind")
    parser.add_argument("--time-limit", type=float, default=3600, help="seconds for the whole run")
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    deadline = time.monotonic() + args.time_limit
    root = Path(args.dir).resolve()
    rng = random.Random(13)
    vocab = vocabulary(rng)
    facts_file = root / "corpus.json"
    cached = facts_file.exists() and not args.rebuild
    if cached:
        facts = json.loads(facts_file.read_text())
        if (facts["messages"], facts["rooms"]) != (args.messages, args.rooms):
            raise SystemExit(f"{root} holds another corpus: pass --rebuild")
        print(f"reusing the corpus in {root}", flush=True)
    else:
        print(f"building the corpus in {root}", flush=True)
        facts = build(root, args, rng, vocab)
    server = start_chatd(root)
    try:
        if "index_seconds" not in facts:
            seconds = wait_indexed(root, max(60.0, deadline - time.monotonic()))
            facts.update(index_seconds=round(seconds, 1), **index_stats(root))
            facts["messages_indexed_per_second"] = round(args.messages / seconds)
            facts["postings_per_second"] = round(facts["postings"] / seconds)
            facts_file.write_text(json.dumps(facts, indent=1))
        else:
            wait_indexed(root, 600)
        status, body, _ = request(server.port, "POST", "/api/auth/login", {"username": "reader", "password": PASSWORD})
        assert status == 200, (status, body)
        token = body["token"]
        request(server.port, "GET", "/api/search?q=warmup", token=token)
        timings = measure(server.port, token, queries(random.Random(args.queries), vocab, args.queries), deadline)
    finally:
        server.close()
    if "store_bytes_after_index" not in facts:  # chatd stopped: the WAL is folded into the file
        facts["store_bytes_after_index"] = store_bytes(root)
        facts["index_growth_bytes"] = facts["store_bytes_after_index"] - facts["store_bytes_before_index"]
        facts_file.write_text(json.dumps(facts, indent=1))
    report = {"corpus": facts, "kinds": {}}
    print(json.dumps(facts, indent=1))
    print(f"{'kind':<12} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'median hits':>12}")
    every = []
    for kind, rows in timings.items():
        if not rows:
            continue
        ms = [r[0] for r in rows]
        every += ms
        row = {"n": len(ms), "p50": round(statistics.median(ms), 1), "p99": round(percentile(ms, 99), 1),
               "max": round(max(ms), 1), "median_hits": statistics.median(r[1] for r in rows)}
        report["kinds"][kind] = row
        print(f"{kind:<12} {row['n']:>4} {row['p50']:>8} {row['p99']:>8} {row['max']:>8} {row['median_hits']:>12}")
    report["overall"] = {"n": len(every), "p50": round(statistics.median(every), 1),
                         "p99": round(percentile(every, 99), 1), "max": round(max(every), 1)}
    print(f"{'overall':<12} {len(every):>4} {report['overall']['p50']:>8} {report['overall']['p99']:>8} "
          f"{report['overall']['max']:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
