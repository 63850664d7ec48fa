"""Unit tests for chatd.chat.admission: caps on sockets per address and per user, and the handshake rate."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from chatd.chat.admission import Admission, SocketLimits
from chatd.errors import ApiError
from chatd.ratelimit import Rate


class AdmissionTests(SynchronousTestCase):
    """Issue 9, finding 5: one user or one address cannot take every socket."""

    def setUp(self):
        self.clock = Clock()
        self.refusals = []
        self.admission = Admission(SocketLimits(per_user=3, per_address=5, handshake_rate=Rate(1, 4)),
                                   self.clock, self.refusals.append)

    def assertRefused(self, call, *args, limit):
        error = self.assertRaises(ApiError, call, *args)
        self.assertEqual((error.status, error.code), (429, "rate_limited"))
        self.assertIn("Retry-After", error.headers)
        self.assertEqual(self.refusals[-1], limit)
        return error

    def test_handshakes_per_address_are_rate_limited(self):
        """A burst of 4 handshakes from one address, then 429 until the rate refills; others are served."""
        tickets = [self.admission.admit("192.0.2.1") for _ in range(4)]
        self.assertRefused(self.admission.admit, "192.0.2.1", limit="handshake_rate")
        self.admission.admit("192.0.2.2")
        for ticket in tickets:
            self.admission.release(ticket)
        self.clock.advance(1)
        self.admission.admit("192.0.2.1")

    def test_sockets_per_address_count_pending_and_open_ones(self):
        """An address holding 5 sockets (open or still handshaking) is refused a sixth until one ends;
        an IPv6 /64 counts as one address."""
        self.admission = Admission(SocketLimits(per_user=100, per_address=5, handshake_rate=Rate(0, 0)),
                                   self.clock, self.refusals.append)
        held = [self.admission.admit(f"2001:db8::{n}") for n in range(5)]
        self.assertRefused(self.admission.admit, "2001:db8::99", limit="sockets_per_address")
        self.admission.release(held[0])
        self.admission.release(held[0])  # twice is harmless
        self.admission.admit("2001:db8::99")
        self.assertRefused(self.admission.admit, "2001:db8::100", limit="sockets_per_address")

    def test_sockets_per_user(self):
        """A user with 3 sockets is refused a fourth from any address; a socket closing makes room."""
        self.admission = Admission(SocketLimits(per_user=3, per_address=100, handshake_rate=Rate(0, 0)),
                                   self.clock, self.refusals.append)
        tickets = []
        for n in range(3):
            ticket = self.admission.admit(f"198.51.100.{n}")
            self.admission.admit_user(ticket, "alice")
            tickets.append(ticket)
        extra = self.admission.admit("198.51.100.9")
        self.assertRefused(self.admission.admit_user, extra, "alice", limit="sockets_per_user")
        other = self.admission.admit("198.51.100.9")  # the refused ticket gave its address place back
        self.admission.admit_user(other, "bob")
        self.admission.release(tickets[0])
        again = self.admission.admit("198.51.100.9")
        self.admission.admit_user(again, "alice")
