// The open room on screen: its messages (a keyed Timeline), its members, who is typing, and the scroll
// position. Changes are collected and drawn together once per animation frame (or within 100 ms in a
// background tab, where animation frames wait), so a burst of frames costs one redraw, not one each.

import { Timeline, entriesOf, wireMessageKeys } from './timeline.js';
import { $, element, messageItem, seenLine } from './view.js';

const FOLLOW_WITHIN_PX = 40; // this close to the bottom, new messages scroll into view
const BACKGROUND_FLUSH_MS = 100;

export class RoomView {
  /**
   * ``context()`` answers {room, pending, myId, myName, isAdmin} for the open room (room null when none);
   * ``actionsFor(message, own)`` the {label, name, run} buttons a message offers; ``renderFile(node, file)``
   * draws a file; ``drawMembers()`` draws the members panel; ``older(room)`` loads the page before the oldest
   * loaded; ``react`` and ``openThread`` as below.
   */
  constructor({ context, actionsFor, renderFile, drawMembers, older, react, openThread }) {
    this.context = context;
    this.older = older;
    this.react = react;           // (message, emoji, on): the user's reaction added or taken back
    this.openThread = openThread; // (seq): the thread of that root, beside the room
    this.drawMembers = drawMembers;
    this.actionsFor = actionsFor;
    this.renderFile = renderFile;
    this.timeline = new Timeline($('message-list'), {
      build: (entry) => this.build(entry),
      patch: (node, entry) => seenLine(node, entry.seenBy),
    });
    this.dirty = {};
    this.requested = false;
    this.typingTimer = null;
    wireMessageKeys($('messages'));
  }

  /**
   * Ask for a redraw of some parts: ``timeline``, ``members``, ``typing``, ``follow`` (scroll to the newest),
   * ``anchor`` (keep the reader's distance from the bottom, after older messages came in above).
   */
  schedule(parts) {
    Object.assign(this.dirty, parts);
    if (this.requested) return;
    this.requested = true;
    requestAnimationFrame(() => this.flush());
    setTimeout(() => this.flush(), BACKGROUND_FLUSH_MS);
  }

  /** Another room (or none) is open: start its list afresh. */
  reset() {
    this.timeline.clear();
    $('typing').textContent = '';
  }

  flush() {
    if (!this.requested) return;
    this.requested = false;
    const dirty = this.dirty;
    this.dirty = {};
    const context = this.context();
    if (!context.room) return;
    if (dirty.timeline) this.drawTimeline(context, dirty);
    if (dirty.members) this.drawMembers();
    if (dirty.typing) this.drawTyping(context.room);
  }

  drawTimeline(context, { follow, anchor }) {
    const { room } = context;
    const scroller = $('messages');
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < FOLLOW_WITHIN_PX;
    this.timeline.render(entriesOf(room, context.pending, context));
    $('room').dataset.joined = String(room.joined); // uploads need the membership a join stores
    $('older').hidden = !room.hasOlder || room.messages.size === 0;
    if (anchor !== undefined) scroller.scrollTop = scroller.scrollHeight - anchor;
    else if (follow || atBottom) scroller.scrollTop = scroller.scrollHeight;
    // A list that does not fill the view cannot be scrolled up for more (say, a page of replies only, which
    // stay in their thread): the older page comes by itself, until the view is full or the history ends.
    const full = scroller.scrollHeight > scroller.clientHeight + FOLLOW_WITHIN_PX;
    if (!full && room.hasOlder && !room.tentative && room.messages.size && !scroller.hidden) this.older(room);
  }

  drawTyping(room) {
    const now = Date.now();
    const users = room.typists(now);
    $('typing').textContent = users.length === 0 ? ''
      : users.length === 1 ? `${users[0]} is typing…` : `${users.join(', ')} are typing…`;
    clearTimeout(this.typingTimer);
    const ends = [...room.typing.values()].filter((until) => until > now);
    if (ends.length) this.typingTimer = setTimeout(() => this.schedule({ typing: true }), Math.min(...ends) - now + 20);
  }

  build(entry) {
    const { myId, myName } = this.context();
    switch (entry.kind) {
      case 'day':
        return element('li', { className: 'day', text: entry.value, attrs: { role: 'separator' } });
      case 'notice':
        return element('li', { className: 'notice', text: entry.value.text });
      case 'pending': {
        const { text, ts } = entry.value;
        const message = { user: myName, user_id: myId, ts, text, client_id: entry.clientId };
        return messageItem(message, { own: true, pending: true, renderFile: this.renderFile });
      }
      default: {
        const message = entry.value;
        return messageItem(message, {
          own: entry.own,
          seenBy: entry.seenBy,
          actions: message.deleted ? [] : this.actionsFor(message, entry.own, entry.inThread),
          renderFile: this.renderFile,
          react: { me: myName, toggle: (emoji, on) => this.react(message, emoji, on) },
          onThread: entry.inThread ? null : this.openThread,
        });
      }
    }
  }

  /** The distance of the reader from the bottom of the list (to keep it while older messages load). */
  get fromBottom() {
    const scroller = $('messages');
    return scroller.scrollHeight - scroller.scrollTop;
  }
}
