// What the server's socket frames do to the page: each goes through reduce() (reducer.js), and each change it
// reports redraws only its part of the page, settles the outbox, or tells the user.

import { reduce } from './reducer.js';
import { $ } from './view.js';

export class FrameHandler {
  /**
   * ``state`` is the page's {me, rooms, active}; ``nav`` the RoomNavigator; the rest are the page's parts the
   * frames update. ``myId()``/``myName()`` are the user's; ``watching(name)`` is whether that room is being read.
   */
  constructor({ state, nav, session, socket, outbox, loader, panel, header, view, sidebar, thread, notifier, composer, myId, myName, watching, showError, showNotice }) {
    Object.assign(this, { state, nav, session, socket, outbox, loader, panel, header, view, sidebar, thread, notifier, composer, myId, myName, watching, showError, showNotice });
  }

  handle(frame) {
    for (const change of reduce(this.state, frame, { myId: this.myId(), now: Date.now(), watching: this.watching })) this.apply(change);
  }

  apply(change) {
    const { state, nav, outbox, loader, panel, view, sidebar, thread } = this;
    const { room } = change;
    const open = room && room.name === state.active;
    switch (change.kind) {
      case 'hello':
        this.session.setUser(change.user);
        $('me').textContent = change.user.username;
        // Every room again from the last message seen, then what was not acknowledged, in order (the same
        // client_id is stored once). The server handles one socket's frames in order: joins come first.
        for (const each of state.rooms.values()) nav.join(each);
        outbox.connected();
        break;
      case 'joined':
        nav.answered(room.name);
        if (room.tentative && open) loader.reads(room);
        room.tentative = false;
        for (const message of change.messages) if (message.client_id) outbox.settle(message.client_id);
        if (change.truncated) loader.latest(room);
        if (!room.info) nav.describe(room);
        if (open && !room.roster) panel.load(room, this.myName());
        if (open) nav.markRead(room);
        sidebar.render(state.rooms, state.active);
        break;
      case 'left':
        nav.gone(room, change.reason === 'removed' ? `You were removed from ${room.label}.` : null);
        break;
      case 'invited':
        nav.join(room);
        if (room.direct) panel.load(room, this.myName());
        this.showNotice(room.direct ? `${change.by} started a direct conversation with you.` : `${change.by} added you to ${room.name}.`);
        sidebar.render(state.rooms, state.active);
        break;
      case 'info':
        nav.described(room);
        break;
      case 'message':
        this.message(change);
        break;
      case 'ack': {
        const entry = outbox.settle(change.frame.client_id);
        if (entry && room && !room.messages.has(change.frame.seq)) { // stored earlier; its broadcast was missed
          const { seq, id, ts, client_id: clientId } = change.frame;
          const stored = { room: room.name, seq, id, ts, user: this.myName(), user_id: this.myId(), text: entry.text, client_id: clientId };
          if (entry.replyTo !== undefined) stored.reply_to = entry.replyTo;
          room.add(stored);
          if (room.name === thread.room) thread.schedule();
          if (open) view.schedule({ timeline: true });
        }
        break;
      }
      case 'error':
        this.error(change.frame);
        break;
      case 'thread':
        if (room.name === thread.room) thread.schedule();
        break;
      case 'mention':
        this.notifier.mention(room.label, change.frame, this.watching(room.name));
        sidebar.render(state.rooms, state.active);
        break;
      case 'elsewhere': { // told, not joined: joining would make the user a member the room is told of
        const { user, room: name, text } = change.frame;
        this.notifier.mention(name, change.frame, false);
        this.showNotice(`${user} mentioned you in ${name}, a room you are not in (join it to read it): “${text.length > 140 ? `${text.slice(0, 140)}…` : text}”`);
        break;
      }
      case 'members': // a role may have changed: the user's own buttons too
        if (open && change.reload) panel.load(room, this.myName());
        if (open) this.header.render();
        if (open) view.schedule({ members: true });
        break;
      default: // timeline, typing: that part of the open room is redrawn
        if (open) view.schedule({ [change.kind]: true });
        break;
    }
  }

  message({ room, message, isNew, fromOthers }) {
    if (message.client_id) this.outbox.settle(message.client_id);
    if (!isNew) return;
    if (room.name === this.state.active) {
      if (fromOthers) {
        $('announcer').textContent = `${message.user}: ${message.file ? `shared ${message.file.name}` : message.text}`;
        this.view.schedule({ typing: true });
      } else {
        this.view.schedule({ follow: true });
      }
      if (this.watching(room.name)) this.nav.markRead(room);
    }
    if (fromOthers) {
      this.sidebar.render(this.state.rooms, this.state.active);
      this.notifier.message(room.name, message);
    }
  }

  // A refused frame. Refusals of our messages are the outbox's: a passing one (rate limit, store away) is
  // resent in order without bothering the user; a final one gives the text back with the reason.
  error(frame) {
    if (frame.code === 'rate_limited') this.socket.slowDown();
    if (frame.code === 'forbidden' && !frame.ref && this.nav.refused(frame.message)) return;
    const outcome = this.outbox.refused(frame);
    if (outcome && outcome.final) {
      this.composer.restore(outcome.entry.text);
      this.showError(`Not sent: ${frame.message}`);
    } else if (outcome) {
      if (frame.code === 'not_in_room' && this.state.rooms.has(outcome.entry.room)) this.nav.join(this.state.rooms.get(outcome.entry.room));
    } else if (frame.code !== 'rate_limited') {
      this.showError(frame.message);
    }
  }
}
