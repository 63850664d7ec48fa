// Read receipts and typing indicators, coalesced: at most one of each per room every second, the newest value
// winning. A user who only reads a busy room sends one receipt a second, not one per message, and stays far
// below the server's frame budget. No DOM here.

const EVERY_MS = 1000;
const TYPING_REPEAT_MS = 3000; // "still typing" is repeated this often while keys are pressed (shown for 6 s)
const TYPING_IDLE_MS = 4000;   // no key for this long: "stopped typing"

export class Signals {
  /** ``send(frame, key)`` hands a frame to the socket; false when it is not connected. */
  constructor({ send, now = () => Date.now() }) {
    this.send = send;
    this.now = now;
    this.slots = new Map(); // "kind room" → {value, sent, at, timer}
    this.idle = new Map();  // room → timer that ends "typing"
  }

  /** The user has seen ``room`` up to ``seq``: a receipt, unless one as far went already. */
  read(room, seq) {
    const slot = this.slot('read', room);
    if (seq <= (slot.sent ?? 0) || (slot.timer && seq <= slot.value)) return;
    this.want('read', room, seq);
  }

  /** A key was pressed in the composer of ``room``. */
  typed(room) {
    const slot = this.slot('typing', room);
    const fresh = slot.sent === true && this.now() - slot.at < TYPING_REPEAT_MS;
    if (!fresh) this.want('typing', room, true, true);
    clearTimeout(this.idle.get(room));
    this.idle.set(room, setTimeout(() => this.stopTyping(room), TYPING_IDLE_MS));
  }

  /** The message was sent or the composer emptied: "stopped typing", if "typing" was said or is due. */
  stopTyping(room) {
    clearTimeout(this.idle.get(room));
    this.idle.delete(room);
    const slot = this.slot('typing', room);
    if (slot.sent === true || slot.value === true) this.want('typing', room, false);
  }

  /** Forget a room (left). */
  forget(room) {
    for (const kind of ['read', 'typing']) {
      clearTimeout(this.slot(kind, room).timer);
      this.slots.delete(`${kind} ${room}`);
    }
    clearTimeout(this.idle.get(room));
    this.idle.delete(room);
  }

  slot(kind, room) {
    const key = `${kind} ${room}`;
    if (!this.slots.has(key)) this.slots.set(key, { value: undefined, sent: undefined, at: -Infinity, timer: null });
    return this.slots.get(key);
  }

  want(kind, room, value, again = false) {
    const slot = this.slot(kind, room);
    slot.value = value;
    if (value === slot.sent && !again) { // back to what the others already know: nothing to say
      clearTimeout(slot.timer);
      slot.timer = null;
      return;
    }
    const wait = slot.at + EVERY_MS - this.now();
    if (wait <= 0) this.flush(kind, room);
    else if (!slot.timer) slot.timer = setTimeout(() => this.flush(kind, room), wait);
  }

  flush(kind, room) {
    const slot = this.slot(kind, room);
    clearTimeout(slot.timer);
    slot.timer = null;
    const frame = kind === 'read' ? { type: 'read', room, seq: slot.value } : { type: 'typing', room, typing: slot.value };
    if (!this.send(frame, `${kind} ${room}`)) return; // offline: sent again when the room is opened or typed in
    slot.sent = slot.value;
    slot.at = this.now();
  }
}
