"""Several real chatd processes on one store and a real Redis bus, end to end (SPEC.md: Several processes and
machines; the Guarantees across processes).

Each test starts its own nx-27017 store, redis-server and chatd twistd processes on loopback, and checks what
clients on real sockets see against the store (tests/verifier.py).
"""

from __future__ import annotations

import time

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests import verifier
from tests.cluster import ChatdNode
from tests.harness import NxProcess, wait_until
from tests.redisserver import RedisServer
from tests.wsclient import connect, joined


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds)


class ClusterCase(TestCase):
    timeout = 240

    async def cluster(self, count: int = 2) -> list[ChatdNode]:
        """Start a store, a Redis and ``count`` chatd nodes on them; ``self.redis``, ``self.store_uri``."""
        nx = NxProcess().start()
        self.addCleanup(nx.kill)
        self.store_uri = nx.uri("cluster")
        self.redis = RedisServer().start()
        self.addCleanup(self.redis.cleanup)
        nodes = [ChatdNode(self, name, self.store_uri, self.redis.url()).start() for name in "abcdefgh"[:count]]
        for node in nodes:
            await node.ready()
        await wait_until(self.buses_up(nodes), 20, "every node's bus to be up")
        return nodes

    def buses_up(self, nodes):
        async def up():
            for node in nodes:
                if (await node.health()).get("bus") != "ok":
                    return False
            return True
        return up

    async def user(self, node: ChatdNode, name: str) -> dict:
        return await node.client().register(name)

    async def socket(self, node: ChatdNode, session: dict, room: str = "lobby"):
        return await joined(node.url, session["token"], room, test=self)


class Delivery(ClusterCase):

    async def test_every_frame_kind_crosses_to_the_other_node_in_order_once(self):
        """Alice on A, bob on B: bob receives alice's join, messages (in seq order, once), typing, read, edit,
        deletion, offline, online and leave; alice receives bob's message; the messages are the store's."""
        a, b = await self.cluster()
        alice, bob = await self.user(a, "alice"), await self.user(b, "bob")
        bob_ws = await self.socket(b, bob)
        alice_ws = await self.socket(a, alice)
        for i in range(20):
            alice_ws.send({"type": "message", "room": "lobby", "text": f"m{i}", "client_id": f"c{i}"})
        acks = [await alice_ws.next("ack", timeout=10) for _ in range(20)]
        alice_ws.send({"type": "typing", "room": "lobby", "typing": True})
        alice_ws.send({"type": "read", "room": "lobby", "seq": acks[-1]["seq"]})
        http = a.client()
        edited = await http.request("PATCH", f"/api/rooms/lobby/messages/{acks[0]['seq']}", {"text": "m0 fixed"},
                                    token=alice["token"])
        self.assertEqual(edited.status, 200)
        deleted = await http.request("DELETE", f"/api/rooms/lobby/messages/{acks[1]['seq']}", token=alice["token"])
        self.assertEqual(deleted.status, 204)
        bob_ws.send({"type": "message", "room": "lobby", "text": "hi alice", "client_id": "b1"})
        await wait_until(lambda: any(f["type"] == "message" and f["text"] == "hi alice" for f in alice_ws.received),
                         5, "bob's message on A")
        await alice_ws.close()
        await wait_until(lambda: any(f.get("event") == "offline" for f in bob_ws.received), 5, "alice offline")
        again = await connect(a.url, alice["token"], test=self)
        await wait_until(lambda: [f.get("event") for f in bob_ws.received][-1] == "online", 5, "alice online")
        again.send({"type": "join", "room": "lobby", "since": 21})
        await again.next("joined", timeout=5)
        again.send({"type": "leave", "room": "lobby"})
        await again.next("left", timeout=5)
        await wait_until(lambda: [f.get("event") for f in bob_ws.received][-1] == "leave", 5, "alice's leave")
        kinds = [(f["type"], f.get("event")) for f in bob_ws.received
                 if f["type"] in ("presence", "typing", "read", "edited", "deleted")]
        self.assertEqual(kinds, [("presence", "join"), ("typing", None), ("read", None), ("edited", None),
                                 ("deleted", None), ("presence", "offline"), ("presence", "online"),
                                 ("presence", "leave")])
        in_store = await verifier.stored(b.client(), bob["token"])
        self.assertEqual([m["seq"] for m in verifier.seen([bob_ws])], list(range(1, 22)))
        self.assertEqual([m["seq"] for m in in_store], list(range(1, 22)))
        # What bob saw is the store's, but for the two messages changed after (he got frames for those).
        found = verifier.problems("bob", verifier.seen([bob_ws]), in_store, first=1)
        self.assertEqual(sorted(found), [f"bob: seq {acks[0]['seq']} differs from the store",
                                         f"bob: seq {acks[1]['seq']} differs from the store"])

    async def test_concurrent_senders_on_both_nodes_every_socket_sees_every_seq_once(self):
        """Two senders on A and two on B, 150 messages each at once into one room, three more receivers on each
        node: every socket sees 1..600 exactly once, in order, as stored."""
        a, b = await self.cluster()
        clients = {}
        for node in (a, b):
            for n in range(5):
                name = f"user{node.name}{n}"
                clients[name] = await self.socket(node, await self.user(node, name))
        senders = [clients[name] for name in ("usera0", "usera1", "userb0", "userb1")]
        for i in range(150):
            for k, ws in enumerate(senders):
                ws.send({"type": "message", "room": "lobby", "text": f"s{k}-{i}", "client_id": f"s{k}-{i}"})
        for ws in senders:
            for _ in range(150):
                await ws.next("ack", timeout=30)
        await wait_until(lambda: all(len(verifier.seen([ws])) >= 600 for ws in clients.values()), 20,
                         "every socket to receive 600 messages")
        in_store = await verifier.stored(a.client(), (await a.client().request(
            "POST", "/api/auth/login", {"username": "usera0", "password": "correct horse"})).json()["token"])
        self.assertEqual([m["seq"] for m in in_store], list(range(1, 601)))
        verifier.check(self, {name: [ws] for name, ws in clients.items()}, in_store, first={n: 1 for n in clients})

    async def test_a_resend_through_the_other_node_is_acked_with_the_original_and_seen_once(self):
        """Alice's message stored through A, resent through B with the same client_id: B acks the first seq;
        bob (on B) and carol (on A) see it once."""
        a, b = await self.cluster()
        alice = await self.user(a, "alice")
        on_a, on_b = await self.socket(a, alice), await self.socket(b, alice)
        bob_ws = await self.socket(b, await self.user(b, "bob"))
        carol_ws = await self.socket(a, await self.user(a, "carol"))
        on_a.send({"type": "message", "room": "lobby", "text": "once", "client_id": "same"})
        first = await on_a.next("ack")
        on_b.send({"type": "message", "room": "lobby", "text": "once", "client_id": "same"})
        again = await on_b.next("ack")
        self.assertEqual((again["seq"], again["id"]), (first["seq"], first["id"]))
        await sleep(0.5)
        for ws in (bob_ws, carol_ws):
            self.assertEqual([m["seq"] for m in verifier.seen([ws])], [first["seq"]])


class AccountsAcrossNodes(ClusterCase):

    async def closed_within(self, ws, started: float) -> float:
        await ws.closed
        return time.monotonic() - started

    async def test_logout_ban_and_password_change_on_one_node_close_sockets_on_the_other_within_a_second(self):
        """Through A: bob logs out, carol is banned, dave changes his password; their sockets on B close
        (4001, 4003, 4001), each within 1 s of the request's answer."""
        a, b = await self.cluster()
        root = await self.user(a, "root")  # the first account: the admin
        sessions = {name: await self.user(a, name) for name in ("bob", "carol", "dave")}
        sockets = {name: await connect(b.url, session["token"], test=self) for name, session in sessions.items()}
        http = a.client()
        started = time.monotonic()
        self.assertEqual((await http.request("POST", "/api/auth/logout", token=sessions["bob"]["token"])).status,
                         204)
        bob_took = await self.closed_within(sockets["bob"], started)
        started = time.monotonic()
        banned = await http.request("POST", f"/api/users/{sessions['carol']['user']['id']}/ban", {},
                                    token=root["token"])
        self.assertEqual(banned.status, 204)
        carol_took = await self.closed_within(sockets["carol"], started)
        started = time.monotonic()
        changed = await http.request("PATCH", f"/api/users/{sessions['dave']['user']['id']}",
                                     {"password": "a new horse battery"}, token=sessions["dave"]["token"])
        self.assertEqual(changed.status, 200)
        dave_took = await self.closed_within(sockets["dave"], started)
        self.assertEqual([sockets[name].close_code for name in ("bob", "carol", "dave")], [4001, 4003, 4001])
        self.assertLess(max(bob_took, carol_took, dave_took), 1.0, (bob_took, carol_took, dave_took))


class Failures(ClusterCase):

    async def flood(self, senders: dict, start: int, count: int) -> None:
        """Each sender sends ``count`` messages (client ids ``name-i`` from ``start``), 20 at a time."""
        for i in range(start, start + count):
            for name, ws in senders.items():
                ws.send({"type": "message", "room": "lobby", "text": f"{name} {i}", "client_id": f"{name}-{i}"})
            if i % 20 == 19:
                await sleep(0.02)

    async def test_redis_killed_mid_flood_and_restarted_loses_nothing(self):
        """Senders on both nodes flood one room; Redis is killed mid-flood (health: degraded, still 200) and
        restarted (health: ok): every acked message is in the history, and every socket on both nodes got
        every message once, in seq order."""
        a, b = await self.cluster()
        clients = {}
        for node in (a, b):
            for n in range(3):
                name = f"user{node.name}{n}"
                clients[name] = await self.socket(node, await self.user(node, name))
        senders = {name: clients[name] for name in ("usera0", "usera1", "userb0", "userb1")}
        await self.flood(senders, 0, 100)
        self.redis.kill()
        await self.flood(senders, 100, 100)
        for node in (a, b):
            response = await node.client().request("GET", "/healthz")
            await wait_until(lambda node=node: self.degraded(node), 10, f"{node.name} to say degraded")
            self.assertEqual(response.status, 200)
        await sleep(1.5)
        self.redis.start()
        await wait_until(self.buses_up([a, b]), 20, "both buses back")
        await self.flood(senders, 200, 100)
        acked = {}
        for name, ws in senders.items():
            for _ in range(300):
                ack = await ws.next("ack", timeout=30)
                acked[ack["client_id"]] = ack["seq"]
        self.assertEqual(len(acked), 1200)
        await wait_until(lambda: all(len(verifier.seen([ws])) >= 1200 for ws in clients.values()), 20,
                         "every socket to have received 1200 messages")
        token = (await a.client().request("POST", "/api/auth/login",
                                          {"username": "usera2", "password": "correct horse"})).json()["token"]
        in_store = await verifier.stored(a.client(), token)
        self.assertEqual({m["client_id"]: m["seq"] for m in in_store}, acked)
        verifier.check(self, {name: [ws] for name, ws in clients.items()}, in_store, first={n: 1 for n in clients})

    async def degraded(self, node) -> bool:
        response = await node.client().request("GET", "/healthz")
        return response.status == 200 and response.json() == {"status": "degraded", "store": "ok", "bus": "down"}

    async def test_a_killed_node_s_users_go_offline_elsewhere_and_its_clients_catch_up_after_restart(self):
        """A is SIGKILLed with alice's only socket: bob on B sees her offline within 15 s; messages sent on B
        meanwhile reach alice when A is back and she rejoins with ``since``: once, in order."""
        a, b = await self.cluster()
        alice, bob = await self.user(a, "alice"), await self.user(b, "bob")
        alice_ws = await self.socket(a, alice)
        bob_ws = await self.socket(b, bob)
        bob_ws.send({"type": "message", "room": "lobby", "text": "before", "client_id": "x0"})
        await alice_ws.next("message", timeout=5)
        a.kill()
        killed = time.monotonic()
        await wait_until(lambda: any(f.get("event") == "offline" and f.get("user") == "alice"
                                     for f in bob_ws.received), 20, "alice to go offline on B")
        self.assertLess(time.monotonic() - killed, 15)
        for i in range(1, 6):
            bob_ws.send({"type": "message", "room": "lobby", "text": f"while A is down {i}", "client_id": f"x{i}"})
            await bob_ws.next("ack", timeout=5)
        a.start()
        await a.ready()
        back = await connect(a.url, alice["token"], test=self)
        last = verifier.seen([alice_ws])[-1]["seq"]
        back.send({"type": "join", "room": "lobby", "since": last})
        await back.next("joined", timeout=10)
        in_store = await verifier.stored(b.client(), bob["token"])
        verifier.check(self, {"alice": [alice_ws, back]}, in_store, first={"alice": 1})
        await wait_until(lambda: any(f.get("event") == "online" and f.get("user") == "alice"
                                     for f in bob_ws.received), 10, "alice online again on B")
