// What the page knows of each joined room: messages by seq (kept sorted as they come), who is online, typing
// and has read what, the join/leave notices, and the room's record, members and roles. No DOM here.

export const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why ``name`` cannot be a room's name, or null when it can. */
export function roomNameProblem(name) {
  if (!ROOM_NAME.test(name)) return '1 to 64 letters, digits, _ . or -';
  if (name === '.' || name === '..') { // a URL would read them as "this" and "the parent" path segment
    return `"${name}" cannot be a room name; use a letter or digit too.`;
  }
  return null;
}

export class Room {
  constructor(name) {
    this.name = name;
    this.messages = new Map(); // seq → Message, as SPEC.md shapes it
    this.seqs = [];            // the loaded seqs, ascending
    this.hasOlder = true;
    this.members = new Set();  // usernames online in the room
    this.typing = new Map();   // username → when their "typing" runs out (ms since the epoch)
    this.reads = new Map();    // username → the seq they have read up to
    this.notices = [];         // {id, afterSeq, text}: join/leave notices, after the seq they followed
    this.unread = 0;
    this.joined = false;
    this.tentative = false;    // named in the join box or the address, its join not answered yet
    this.loadingOlder = false;
    this.info = null;          // the server's Room (visibility, topic, owner…), once heard
    this.people = null;        // a direct room's other members (usernames), once heard
    this.roster = null;        // username → role ('owner', 'moderator', 'member'), once listed
  }

  get direct() { return Boolean(this.info && this.info.visibility === 'direct'); }
  get private() { return Boolean(this.info && this.info.visibility === 'private'); }

  /** What the room is called on screen: a direct room by the people in it, never by its dm-… name. */
  get label() {
    if (!this.direct) return this.name;
    return this.people && this.people.length ? this.people.join(', ') : 'Direct message';
  }

  /**
   * The members as the server listed them (``[{user, role, online}]``); ``me`` is left out of a direct room's
   * people. Who is online is taken from the list too: a member added by invitation joins without a `presence`.
   */
  setRoster(members, me) {
    this.roster = new Map(members.map((member) => [member.user, member.role]));
    for (const { user, online } of members) {
      if (online) this.members.add(user);
      else this.members.delete(user);
    }
    if (this.direct) this.people = members.map((member) => member.user).filter((user) => user !== me).sort();
  }

  get lastSeq() {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : 0;
  }

  get oldestSeq() {
    return this.seqs.length ? this.seqs[0] : null;
  }

  /** Add or replace a stored message: true if its seq is new here (a message appears once). */
  add(message) {
    const known = this.messages.has(message.seq);
    this.messages.set(message.seq, message);
    if (!known) insertSorted(this.seqs, message.seq);
    if (message.seq === 1) this.hasOlder = false;
    return !known;
  }

  /** Forget every message (a `joined` whose history was cut: the latest come again through REST). */
  clear() {
    this.messages.clear();
    this.seqs = [];
    this.hasOlder = true;
  }

  edit(seq, text, editedAt) {
    const message = this.messages.get(seq);
    if (message) this.messages.set(seq, { ...message, text, edited_at: editedAt });
  }

  remove(seq) {
    const message = this.messages.get(seq);
    if (message) {
      const { room, id, user, user_id: userId, ts } = message;
      this.messages.set(seq, { room, seq, id, user, user_id: userId, ts, deleted: true });
    }
  }

  ordered() {
    return this.seqs.map((seq) => this.messages.get(seq));
  }

  /** A read position heard (a `read` frame, or the server's list after a reload); never backwards. */
  read(user, seq) {
    if (seq > (this.reads.get(user) || 0)) this.reads.set(user, seq);
  }

  /** Who has read up to ``seq`` or beyond (for "seen by" under the latest such message). */
  readers(seq) {
    return [...this.reads.entries()].filter(([, read]) => read >= seq).map(([user]) => user).sort();
  }

  /** Who is typing now (their last "typing" has not run out). */
  typists(now) {
    return [...this.typing.entries()].filter(([, until]) => until > now).map(([user]) => user);
  }
}

function insertSorted(array, value) {
  if (!array.length || array[array.length - 1] < value) { // the usual case: a newer message
    array.push(value);
    return;
  }
  let low = 0;
  let high = array.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (array[middle] < value) low = middle + 1;
    else high = middle;
  }
  array.splice(low, 0, value);
}

/**
 * What ``me`` (a username; ``admin`` a site admin) may do in ``room``, by SPEC.md's "Rooms and roles": the
 * page shows only the buttons these allow (the server decides anyway). Nothing changes in a direct room.
 */
export function powers(room, me, admin) {
  const role = room.roster ? room.roster.get(me) : undefined;
  const fixed = room.direct || !room.info;
  return {
    role,
    moderate: !fixed && (admin || role === 'owner' || role === 'moderator'),
    own: !fixed && (admin || role === 'owner'),
    leave: !room.direct,
  };
}
