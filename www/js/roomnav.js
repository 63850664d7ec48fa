// Which rooms are the user's and which one is open: joining (and the joins awaiting their answer), opening a
// room or the directory, a room going away, a room's record drawn again, read receipts, and a search result
// shown in its room.

import { showInAddress } from './address.js';
import { Room, roomNameProblem } from './rooms.js';
import { $ } from './view.js';

export class RoomNavigator {
  /**
   * ``state`` is the page's {me, rooms, active}; the rest are the page's parts this moves between rooms.
   * ``myName()`` is the user's username; ``showError(text)`` and ``showNotice(text)`` tell the user.
   */
  constructor(api, { state, socket, outbox, signals, sidebar, directory, header, panel, view, thread, loader, composer, myName, showError, showNotice }) {
    Object.assign(this, { api, state, socket, outbox, signals, sidebar, directory, header, panel, view, thread, loader, composer, myName, showError, showNotice });
    // The rooms whose `join` awaits its answer, in the order sent: the server answers one socket's frames in order,
    // so a `forbidden` without a ref is the refusal of the oldest (a private room the user is not a member of).
    this.awaiting = [];
  }

  get active() {
    return this.state.active ? this.state.rooms.get(this.state.active) : undefined;
  }

  join(room) {
    const frame = { type: 'join', room: room.name };
    if (room.messages.size) frame.since = room.lastSeq;
    if (this.socket.send(frame)) this.awaiting.push(room.name);
  }

  answered(name) {
    const at = this.awaiting.indexOf(name);
    if (at >= 0) this.awaiting.splice(at, 1);
  }

  /** No join awaits its answer any more (signed out, or the socket closed). */
  forgetJoins() {
    this.awaiting = [];
  }

  /** A `forbidden` without a ref: the oldest awaited join was refused, and its room goes. False if none awaits. */
  refused(reason) {
    if (!this.awaiting.length) return false;
    const name = this.awaiting.shift();
    const room = this.state.rooms.get(name);
    if (room && !room.joined) this.gone(room);
    this.showError(`You cannot open "${name}": ${reason}`);
    return true;
  }

  /** ``room`` is no longer the user's (left, removed, or its join refused): it goes, with ``why`` said. */
  gone(room, why) {
    this.state.rooms.delete(room.name);
    this.outbox.dropRoom(room.name);
    this.signals.forget(room.name);
    if (room.name === this.state.active) this.open(this.state.rooms.keys().next().value || null);
    this.sidebar.render(this.state.rooms, this.state.active);
    if (why) this.showNotice(why);
  }

  /** The room's record (topic, visibility), for one the page met by name only (joined from the join box). */
  async describe(room) {
    try {
      room.info = await this.api.room(room.name);
      if (room.direct && !room.roster) await this.panel.load(room, this.myName());
      this.described(room);
    } catch (e) { /* not visible to this user: the join is refused and the room goes */ }
  }

  /** A room's record or members changed: its name, lock, topic and buttons are drawn again. */
  described(room) {
    this.sidebar.render(this.state.rooms, this.state.active);
    if (room.name === this.state.active) {
      this.header.render();
      this.view.schedule({ members: true });
    }
  }

  /** A room made here (POST /api/rooms or /api/dms): the user is a member already; join it and open it. */
  adopt(info, names) {
    let room = this.state.rooms.get(info.name);
    if (!room) {
      room = new Room(info.name);
      this.state.rooms.set(info.name, room);
    }
    room.info = info;
    if (names) room.people = names;
    if (!room.joined) this.join(room);
    this.open(info.name);
    this.composer.focus();
  }

  markRead(room) {
    if (room.lastSeq && room.joined) this.signals.read(room.name, room.lastSeq);
    if (room.unread || room.mentions) {
      room.unread = 0;
      room.mentions = 0;
      this.sidebar.render(this.state.rooms, this.state.active);
    }
  }

  /** Join (if need be) and open a room named in the join form or picked in the directory. */
  enter(name) {
    $('join-error').textContent = roomNameProblem(name) || '';
    if (roomNameProblem(name)) return;
    if (!this.state.rooms.has(name)) { // listed once joined; a refused join (a private room) takes it away again
      const room = new Room(name);
      room.tentative = true;
      this.state.rooms.set(name, room);
      this.join(room);
    }
    $('join-room').value = '';
    this.open(name);
    this.composer.focus();
  }

  /** Show a room, or with ``name`` null the directory; resolves once the directory is listed. */
  open(name) {
    this.state.active = name;
    const room = this.active;
    for (const id of ['composer', 'messages']) $(id).hidden = !room;
    $('directory').hidden = Boolean(room);
    this.sidebar.slide(false);
    if (this.thread.room !== name) this.thread.close();
    this.view.reset();
    this.panel.reset();
    this.header.render();
    this.sidebar.render(this.state.rooms, this.state.active);
    showInAddress(name);
    if (!room) return this.directory.show(new Set(this.state.rooms.keys()));
    // Its history and members come over REST once the room is the user's (a join from the join box may be
    // refused: a private room's messages are asked for by its members only).
    if (!room.tentative) {
      if (room.messages.size === 0 && room.hasOlder) this.loader.latest(room);
      this.loader.reads(room);
      this.panel.load(room, this.myName());
    }
    this.view.schedule({ timeline: true, follow: true, members: true, typing: true });
    this.markRead(room);
    return Promise.resolve();
  }

  /** A search result: its room opened (joined first if need be), older pages loaded down to it, it in view and
   *  focused. A reply is shown in its thread, paged back to it there: the room stays at its latest messages. */
  async reveal(message) {
    if (!this.state.rooms.has(message.room)) this.enter(message.room);
    else this.open(message.room);
    const room = this.state.rooms.get(message.room);
    if (!room) return;
    for (let waited = 0; room.tentative && waited < 100; waited += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    if (message.reply_to !== undefined) {
      if (this.state.active === room.name) await this.thread.open(room.name, message.reply_to, message.seq);
      return;
    }
    const seq = message.seq;
    await this.loader.reach(room, seq);
    if (this.state.active !== room.name) return;
    this.view.schedule({ timeline: true });
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    this.view.flush();
    const item = document.querySelector(`#message-list .message[data-seq="${seq}"]`);
    if (item) {
      item.scrollIntoView({ block: 'center' });
      item.classList.add('found');
      item.focus({ preventScroll: true });
    }
  }
}
