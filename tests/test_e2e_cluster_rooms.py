"""Private rooms across two real chatd processes on one nx-27017 store and a real Redis bus (SPEC.md: Rooms
and roles: removing a member ends their membership on every socket and process at once; the Guarantee that
nobody reads a private room they are not a member of; Several processes and machines).

Changes are made through node A; what the member sees is checked on node B: their open sockets, a socket
opened afresh (B's copy of the user must not outlive the change), REST history, sessions and the room list.
"""

from __future__ import annotations

from tests.harness import wait_until
from tests.test_e2e_cluster import ClusterCase
from tests.wsclient import connect


class RoomsAcrossNodes(ClusterCase):
    """root (the site admin), olive, mem and wit registered; olive owns the private room ``team`` of which
    mem and wit are members."""

    async def rooms_cluster(self):
        self.a, self.b = await self.cluster()
        self.http_a, self.http_b = self.a.client(), self.b.client()
        for name in ("root", "olive", "mem", "wit", "out"):
            setattr(self, name, await self.user(self.a, name))
        created = await self.call(self.http_a, "POST", "/api/rooms", self.olive,
                                  {"name": "team", "visibility": "private"})
        self.assertEqual(created.status, 201, created)
        for name in ("mem", "wit"):
            invited = await self.call(self.http_a, "POST", "/api/rooms/team/members", self.olive, {"user": name})
            self.assertEqual(invited.status, 201, invited)

    async def call(self, http, method, path, session, body=None):
        return await http.request(method, path, body, token=session["token"])

    async def opened(self, node, session):
        """A socket of ``session``'s user on ``node``, past ``hello``."""
        ws = await connect(node.url, session["token"], test=self)
        await ws.next("hello")
        return ws

    async def joined(self, node, session, room="team"):
        ws = await self.opened(node, session)
        ws.send({"type": "join", "room": room})
        await ws.next("joined")
        return ws

    async def refused_everything_on_b(self, session, room="team"):
        """On node B, ``session``'s user cannot read ``room``: a fresh socket's join (with since) is
        forbidden, both history routes are 404, and neither sessions nor the room list shows it."""
        fresh = await self.opened(self.b, session)
        fresh.send({"type": "join", "room": room, "since": 0})
        self.assertEqual((await fresh.next("error", "joined"))["code"], "forbidden")
        for path in (f"/api/rooms/{room}/messages", f"/api/sessions/{room}/messages"):
            self.assertEqual((await self.call(self.http_b, "GET", path, session)).status, 404, path)
        sessions = (await self.call(self.http_b, "GET", "/api/sessions", session)).json()["sessions"]
        self.assertNotIn(room, [s["room"] for s in sessions])
        listed = (await self.call(self.http_b, "GET", "/api/rooms", session)).json()["rooms"]
        self.assertNotIn(room, [r["name"] for r in listed])

    async def test_a_removal_on_one_node_stops_the_member_on_the_other_at_once(self):
        """mem, with a socket in team on B (B also caching mem's account from its handshake), is removed by
        olive through A: that socket gets left (removed) within a second and no message of the room after
        it, though wit on B gets olive's next message; its join on B is then forbidden, and so is a fresh
        socket's; history on B is 404; sessions and the room list on B no longer show the room."""
        await self.rooms_cluster()
        olive = await self.joined(self.a, self.olive)
        mem, wit = await self.joined(self.b, self.mem), await self.joined(self.b, self.wit)
        olive.send({"type": "message", "room": "team", "text": "before", "client_id": "c1"})
        self.assertEqual((await mem.next("message", timeout=5))["text"], "before")
        removed = await self.call(self.http_a, "DELETE", "/api/rooms/team/members/mem", self.olive)
        self.assertEqual(removed.status, 204, removed)
        self.assertEqual(await mem.next("left", timeout=1), {"type": "left", "room": "team", "reason": "removed"})
        olive.send({"type": "message", "room": "team", "text": "after", "client_id": "c2"})
        while (await wit.next("message", timeout=5))["text"] != "after":
            pass
        await mem.none("message", wait=0.5)
        left_at = mem.received.index({"type": "left", "room": "team", "reason": "removed"})
        self.assertEqual([f for f in mem.received[left_at:] if f.get("room") == "team" and f["type"] == "message"], [])
        mem.send({"type": "join", "room": "team"})
        self.assertEqual((await mem.next("error", "joined"))["code"], "forbidden")
        await self.refused_everything_on_b(self.mem)

    async def test_a_removal_while_the_bus_is_down_stops_the_member_on_the_other_within_two_seconds(self):
        """Redis killed (both nodes degraded); olive removes mem through A and says something: mem's socket
        on B gets left (removed) within 2 s and never the message, which wit on B gets from the store; a
        fresh socket of mem's on B is refused. Redis back: nothing more reaches mem's first socket."""
        await self.rooms_cluster()
        olive = await self.joined(self.a, self.olive)
        mem, wit = await self.joined(self.b, self.mem), await self.joined(self.b, self.wit)
        self.redis.kill()
        for node in (self.a, self.b):
            await wait_until(lambda node=node: self.degraded(node), 10, f"{node.name} to say degraded")
        removed = await self.call(self.http_a, "DELETE", "/api/rooms/team/members/mem", self.olive)
        self.assertEqual(removed.status, 204, removed)
        olive.send({"type": "message", "room": "team", "text": "after", "client_id": "c1"})
        self.assertEqual(await mem.next("left", timeout=2), {"type": "left", "room": "team", "reason": "removed"})
        self.assertEqual((await wit.next("message", timeout=3))["text"], "after")
        fresh = await self.opened(self.b, self.mem)
        fresh.send({"type": "join", "room": "team"})
        self.assertEqual((await fresh.next("error", "joined"))["code"], "forbidden")
        self.redis.start()
        await self.wait_buses([self.a, self.b], "both buses back")
        olive.send({"type": "message", "room": "team", "text": "later", "client_id": "c2"})
        self.assertEqual((await wit.next("message", timeout=5))["text"], "later")
        self.assertEqual([f for f in mem.received if f["type"] == "message" and f.get("room") == "team"], [])

    async def degraded(self, node) -> bool:
        """Whether ``node``'s /healthz says the bus is down (and the store fine)."""
        response = await node.client().request("GET", "/healthz")
        return response.status == 200 and response.json().get("bus") == "down"

    async def test_making_a_public_room_private_on_one_node_closes_it_to_outsiders_on_the_other(self):
        """A public room ``open`` with olive and wit; out read its history on B. olive makes it private
        through A: wit's socket on B hears the `room` frame; out, an outsider, now gets a forbidden join
        and 404s on B and finds it neither in sessions nor in the room list there; wit still reads it."""
        await self.rooms_cluster()
        olive = await self.joined(self.a, self.olive, "open")
        wit = await self.joined(self.b, self.wit, "open")
        olive.send({"type": "message", "room": "open", "text": "said in public", "client_id": "c1"})
        await wit.next("message", timeout=5)
        self.assertEqual((await self.call(self.http_b, "GET", "/api/rooms/open/messages", self.out)).status, 200)
        changed = await self.call(self.http_a, "PATCH", "/api/rooms/open", self.olive, {"visibility": "private"})
        self.assertEqual(changed.status, 200, changed)
        self.assertEqual((await wit.next("room", timeout=1))["room"]["visibility"], "private")
        await self.refused_everything_on_b(self.out, "open")
        page = (await self.call(self.http_b, "GET", "/api/rooms/open/messages", self.wit)).json()
        self.assertEqual([m["text"] for m in page["messages"]], ["said in public"])

    async def test_an_admin_demoted_on_one_node_may_no_longer_join_private_rooms_on_the_other(self):
        """root, a site admin, has a socket open on B; root makes olive admin and olive takes root's role
        away, both through A. Once B's REST answers root's account as a user (B's copy follows the store's
        change feed), root's same socket on B is refused team (forbidden), as a non-admin is."""
        await self.rooms_cluster()
        root = await self.opened(self.b, self.root)
        root_path = f"/api/users/{self.root['user']['id']}"
        self.assertEqual((await self.call(self.http_b, "GET", root_path, self.root)).json()["role"], "admin")
        for who, whom, role in ((self.root, self.olive, "admin"), (self.olive, self.root, "user")):
            changed = await self.call(self.http_a, "PATCH", f"/api/users/{whom['user']['id']}", who, {"role": role})
            self.assertEqual(changed.status, 200, changed)

        async def demoted_on_b():
            return (await self.call(self.http_b, "GET", root_path, self.olive)).json()["role"] == "user"
        await wait_until(demoted_on_b, 12, "node B to see root demoted")
        root.send({"type": "join", "room": "team"})
        self.assertEqual((await root.next("error", "joined"))["code"], "forbidden")
