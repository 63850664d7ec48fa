// What the page knows of each joined room: messages by seq, own messages not yet stored, who is online,
// typing and has read what. No DOM here.

export class Room {
  constructor(name) {
    this.name = name;
    this.messages = new Map(); // seq → Message, as SPEC.md shapes it
    this.pending = new Map();  // client_id → {text, ts}: sent, not yet stored
    this.oldestSeq = null;     // the lowest seq loaded; older ones come from REST when scrolled to
    this.hasOlder = true;
    this.members = new Set();  // usernames online in the room
    this.typing = new Map();   // username → timer that clears it
    this.reads = new Map();    // username → the seq they have read up to
    this.notices = [];         // {afterSeq, text}: join/leave notices, placed after the seq they followed
    this.unread = 0;
    this.joined = false;
  }

  get lastSeq() {
    let last = 0;
    for (const seq of this.messages.keys()) if (seq > last) last = seq;
    return last;
  }

  /** Add a stored message; false if it was already here (a message appears once). */
  add(message) {
    if (message.client_id) this.pending.delete(message.client_id);
    const known = this.messages.has(message.seq);
    this.messages.set(message.seq, message);
    if (this.oldestSeq === null || message.seq < this.oldestSeq) this.oldestSeq = message.seq;
    if (message.seq === 1) this.hasOlder = false;
    return !known;
  }

  edit(seq, text, editedAt) {
    const message = this.messages.get(seq);
    if (message) this.messages.set(seq, { ...message, text, edited_at: editedAt });
  }

  remove(seq) {
    const message = this.messages.get(seq);
    if (message) {
      this.messages.set(seq, { room: message.room, seq, id: message.id, user: message.user, user_id: message.user_id, ts: message.ts, deleted: true });
    }
  }

  ordered() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /** Who has read up to ``seq`` or beyond (for "seen by" under the latest such message). */
  readers(seq) {
    return [...this.reads.entries()].filter(([, read]) => read >= seq).map(([user]) => user).sort();
  }
}

export const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
