// The rooms the user is in, in two lists: rooms (a lock on private ones) and direct messages (named by the
// people in them). Kept item by item, so an unread count changing does not take the keyboard focus away from
// a room button. Also the ☰ toggle that slides them in on phones, and Escape that slides them out.

import { $, element } from './view.js';

export class Sidebar {
  /** ``onOpen(name)`` opens a room; ``onBrowse()`` shows the room directory. */
  constructor({ onOpen, onBrowse }) {
    this.onOpen = onOpen;
    this.items = new Map(); // room name → {item, button, name, lock, badge}
    $('rooms-toggle').addEventListener('click', () => this.slide(!document.body.classList.contains('sidebar-open')));
    $('browse').addEventListener('click', () => { this.slide(false); onBrowse(); });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && document.body.classList.contains('sidebar-open') && !document.querySelector('dialog[open]')) {
        event.preventDefault();
        this.slide(false);
        $('rooms-toggle').focus();
      }
    });
  }

  /** Open (true) or close the rooms list on narrow screens; opening focuses its first control. */
  slide(open) {
    const was = document.body.classList.contains('sidebar-open');
    document.body.classList.toggle('sidebar-open', open);
    $('rooms-toggle').setAttribute('aria-expanded', String(open));
    if (open && !was) $('join-room').focus();
  }

  /** Show ``rooms`` (name → Room) with their unread counts, ``active`` marked. */
  render(rooms, active) {
    for (const [name, shown] of this.items) {
      if (!rooms.has(name) || rooms.get(name).tentative) {
        shown.item.remove();
        this.items.delete(name);
      }
    }
    const cursors = new Map([['room-list', $('room-list').firstChild], ['dm-list', $('dm-list').firstChild]]);
    for (const room of rooms.values()) {
      if (room.tentative) continue; // a join from the join box not answered yet: maybe a room it may not see
      const listId = room.direct ? 'dm-list' : 'room-list';
      let shown = this.items.get(room.name);
      if (!shown) shown = this.create(room.name);
      if (shown.name.textContent !== room.label) shown.name.textContent = room.label;
      if (room.private && !shown.lock.isConnected) shown.button.prepend(shown.lock);
      else if (!room.private) shown.lock.remove();
      shown.button.setAttribute('aria-current', room.name === active ? 'page' : 'false');
      if (room.unread) {
        shown.badge.textContent = String(room.unread);
        shown.badge.setAttribute('aria-label', `${room.unread} unread`);
        if (!shown.badge.isConnected) shown.button.append(shown.badge);
      } else {
        shown.badge.remove();
      }
      if (room.mentions) {
        shown.mention.textContent = `@${room.mentions}`;
        shown.mention.setAttribute('aria-label', `${room.mentions} ${room.mentions === 1 ? 'mention' : 'mentions'} of you`);
        if (!shown.mention.isConnected) shown.button.append(shown.mention);
      } else {
        shown.mention.remove();
      }
      const cursor = cursors.get(listId);
      if (shown.item === cursor) cursors.set(listId, cursor.nextSibling);
      else $(listId).insertBefore(shown.item, cursor);
    }
    $('dm-empty').hidden = $('dm-list').childElementCount > 0;
  }

  create(name) {
    const badge = element('span', { className: 'badge' });
    const mention = element('span', { className: 'badge mention-badge' });
    const label = element('span', { className: 'room-name', text: name });
    const lock = lockMark();
    const button = element('button', { className: 'room-button', attrs: { type: 'button', 'data-room': name } }, [label]);
    button.addEventListener('click', () => this.onOpen(name));
    const shown = { item: element('li', {}, [button]), button, name: label, lock, badge, mention };
    this.items.set(name, shown);
    return shown;
  }

  clear() {
    $('room-list').replaceChildren();
    $('dm-list').replaceChildren();
    $('dm-empty').hidden = false;
    this.items.clear();
    this.slide(false);
  }
}

/** The mark of a private room: a lock people see, and words a screen reader says. */
export function lockMark() {
  return element('span', { className: 'lock', attrs: { title: 'Private room' } }, [
    element('span', { className: 'lock-icon', attrs: { 'aria-hidden': 'true' } }), // drawn in CSS: no font needed
    element('span', { className: 'visually-hidden', text: 'Private: ' }),
  ]);
}
