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
    this.seqs = [];            // the loaded seqs, ascending (the history's pages, without gaps)
    this.placed = new Set();   // the same seqs, to look up
    this.hasOlder = true;
    this.members = new Set();  // usernames online in the room
    this.typing = new Map();   // username → when their "typing" runs out (ms since the epoch)
    this.reads = new Map();    // username → the seq they have read up to
    this.notices = [];         // {id, afterSeq, text}: join/leave notices, after the seq they followed
    this.unread = 0;
    this.mentions = 0;         // unread messages that mention the user
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
    if (!this.placed.has(message.seq)) {
      insertSorted(this.seqs, message.seq);
      this.placed.add(message.seq);
    }
    if (message.seq === 1) this.hasOlder = false;
    return !known;
  }

  /**
   * Know a message met outside the history's pages (a thread's root or reply, a search result): it joins the
   * timeline when it falls inside the loaded pages, else it waits apart (reactions and edits still reach it)
   * until the page that holds it loads, so scrolling up leaves no gap.
   */
  keep(message) {
    if (this.placed.has(message.seq) || (this.seqs.length && message.seq > this.oldestSeq)) this.add(message);
    else this.messages.set(message.seq, message);
  }

  /** Forget every message (a `joined` whose history was cut: the latest come again through REST). */
  clear() {
    this.messages.clear();
    this.seqs = [];
    this.placed.clear();
    this.hasOlder = true;
  }

  edit(seq, text, editedAt) {
    const message = this.messages.get(seq);
    if (message) this.messages.set(seq, { ...message, text, edited_at: editedAt });
  }

  /** A tombstone keeps its place in a thread (reply_to) and a root's summary (thread); reactions go. */
  remove(seq) {
    const message = this.messages.get(seq);
    if (message) {
      const { room, id, user, user_id: userId, ts, reply_to: replyTo, thread } = message;
      const tombstone = { room, seq, id, user, user_id: userId, ts, deleted: true };
      if (replyTo !== undefined) tombstone.reply_to = replyTo;
      if (thread) tombstone.thread = thread;
      this.messages.set(seq, tombstone);
    }
  }

  ordered() {
    return this.seqs.map((seq) => this.messages.get(seq));
  }

  /** The replies loaded of the thread under ``root`` (a seq), oldest first. */
  replies(root) {
    return [...this.messages.values()].filter((message) => message.reply_to === root).sort((a, b) => a.seq - b.seq);
  }

  /** A `reaction` frame: ``user`` added (``on``) or took back ``emoji`` on message ``seq``. */
  react(seq, emoji, user, on) {
    const message = this.messages.get(seq);
    if (!message || message.deleted) return false;
    const reactions = { ...(message.reactions || {}) };
    const users = (reactions[emoji] || []).filter((name) => name !== user);
    if (on) users.push(user);
    if (users.length) reactions[emoji] = users;
    else delete reactions[emoji];
    const changed = { ...message, reactions };
    if (!Object.keys(reactions).length) delete changed.reactions;
    this.messages.set(seq, changed);
    return true;
  }

  /** A `thread` frame: the root's reply count and last reply, as history would carry them. */
  summarize(root, replies, lastReplyAt, lastReplySeq) {
    const message = this.messages.get(root);
    if (!message) return false;
    this.messages.set(root, { ...message, thread: { replies, last_reply_at: lastReplyAt, last_reply_seq: lastReplySeq } });
    return true;
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
