// What the user typed and the server has not stored yet, in the order they typed it. The outbox sends in that
// order, a few at a time, through the socket's paced queue (so nothing is refused for speed); when something
// goes wrong (a drop, a rate limit after all, the store away, no ack for too long) it stops, waits, and sends
// everything unacknowledged again from the oldest, with the same client_id, so the server stores each message
// once and in order. No DOM here.

const IN_FLIGHT = 10;          // messages sent and not yet acknowledged; bounds what a resend repeats
const ACK_TIMEOUT_MS = 10000;  // no ack for this long: sent again (a frame lost, a store that hangs)
const PAUSE_START_MS = 1000;   // after a refusal: the server's budget refills, the store comes back
const PAUSE_MAX_MS = 8000;
const CHECK_EVERY_MS = 1000;
const REJOINS = 3;             // a message still "not in room" after this many joins: the join is refused

// Refusals that a later resend can overcome; any other refusal of a message is final (too long, say).
const TRANSIENT = ['rate_limited', 'unavailable', 'not_in_room'];

export class Outbox {
  /**
   * ``send(frame)`` hands a frame to the socket (false when it is not connected), ``unsend()`` takes back
   * the message frames still waiting there; ``onChange(room)`` is told when a room's pending messages
   * changed (to redraw just those).
   */
  constructor({ send, unsend, onChange, now = () => Date.now() }) {
    this.send = send;
    this.unsend = unsend;
    this.onChange = onChange;
    this.now = now;
    this.entries = new Map(); // client_id → {room, text, replyTo?, ts, sentAt|null}; Map order is typing order
    this.online = false;
    this.pausedUntil = 0;
    this.pause = PAUSE_START_MS;
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
  }

  /** A message typed in ``room`` (``replyTo``: the seq of the thread's root, for a reply): queued, and sent
   *  as soon as it is its turn. Its client_id. */
  add(room, text, replyTo) {
    const clientId = crypto.randomUUID();
    this.entries.set(clientId, { room, text, replyTo, ts: new Date().toISOString(), sentAt: null, rejoins: 0 });
    this.onChange(room);
    this.pump();
    return clientId;
  }

  /** [client_id, entry] of ``room``'s unacknowledged messages, oldest first. */
  pendingIn(room) {
    return [...this.entries].filter(([, entry]) => entry.room === room);
  }

  has(clientId) {
    return this.entries.has(clientId);
  }

  /** Stored (an ack, or the message itself seen in a frame or history): no longer pending. */
  settle(clientId) {
    const entry = this.entries.get(clientId);
    if (!entry) return null;
    this.entries.delete(clientId);
    this.pause = PAUSE_START_MS; // the server is taking messages again
    this.onChange(entry.room);
    this.pump();
    return entry;
  }

  /** The socket is up and every room re-joined: send from the oldest again. */
  connected() {
    this.online = true;
    this.pausedUntil = 0;
    this.rewind();
    this.pump();
  }

  disconnected() {
    this.online = false;
    this.rewind();
  }

  /** Signed out: nothing is sent any more. */
  clear() {
    this.entries.clear();
    this.online = false;
  }

  /** Forget a room's messages (the user left it or was removed). */
  dropRoom(room) {
    for (const [clientId, entry] of this.entries) if (entry.room === room) this.entries.delete(clientId);
  }

  /**
   * An error frame. A final refusal of one of our messages removes it and answers its entry (to give the
   * text back); a passing one (rate limit, store away) pauses and resends in order. Null when the error
   * was not about the outbox.
   */
  refused(frame) {
    const entry = frame.ref && this.entries.get(frame.ref);
    const stuck = entry && frame.code === 'not_in_room' && ++entry.rejoins > REJOINS;
    if (entry && (stuck || !TRANSIENT.includes(frame.code))) {
      this.entries.delete(frame.ref);
      this.onChange(entry.room);
      return { final: true, entry };
    }
    if (entry || frame.code === 'rate_limited') { // a rate limit names no frame: assume it was ours
      this.hold();
      return { final: false, entry };
    }
    return null;
  }

  /** Stop, and send everything unacknowledged again once a pause has passed (doubling while it recurs). */
  hold() {
    this.pausedUntil = this.now() + this.pause;
    this.pause = Math.min(PAUSE_MAX_MS, this.pause * 2);
    this.rewind();
  }

  rewind() {
    this.unsend();
    for (const entry of this.entries.values()) entry.sentAt = null;
  }

  /** Send whatever is next, in typing order, up to IN_FLIGHT unacknowledged. */
  pump() {
    if (!this.online || this.now() < this.pausedUntil) return;
    let inFlight = 0;
    for (const [clientId, entry] of this.entries) {
      if (entry.sentAt !== null) {
        inFlight += 1;
        continue;
      }
      if (inFlight >= IN_FLIGHT) return;
      const frame = { type: 'message', room: entry.room, text: entry.text, client_id: clientId };
      if (entry.replyTo !== undefined) frame.reply_to = entry.replyTo;
      if (!this.send(frame)) return;
      entry.sentAt = this.now();
      inFlight += 1;
    }
  }

  /** Once a second: the end of a pause, or an ack overdue. */
  check() {
    const oldest = [...this.entries.values()].find((entry) => entry.sentAt !== null);
    if (oldest && this.now() - oldest.sentAt > ACK_TIMEOUT_MS) this.hold();
    this.pump();
  }
}
