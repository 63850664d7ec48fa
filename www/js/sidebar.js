// The rooms the user is in (kept item by item, so an unread count changing does not take the keyboard focus
// away from a room button), the ☰ toggle that slides them in on phones, and Escape that slides them out.

import { $, element } from './view.js';

export class Sidebar {
  /** ``onOpen(name)`` opens a room; ``onBrowse()`` shows the room directory. */
  constructor({ onOpen, onBrowse }) {
    this.onOpen = onOpen;
    this.items = new Map(); // room name → {item, button, badge}
    $('rooms-toggle').addEventListener('click', () => this.slide(!document.body.classList.contains('sidebar-open')));
    $('browse').addEventListener('click', () => { this.slide(false); onBrowse(); });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && document.body.classList.contains('sidebar-open')) {
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
    const list = $('room-list');
    for (const [name, shown] of this.items) {
      if (!rooms.has(name)) {
        shown.item.remove();
        this.items.delete(name);
      }
    }
    let cursor = list.firstChild;
    for (const room of rooms.values()) {
      let shown = this.items.get(room.name);
      if (!shown) shown = this.create(room.name);
      shown.button.setAttribute('aria-current', room.name === active ? 'page' : 'false');
      if (room.unread) {
        shown.badge.textContent = String(room.unread);
        shown.badge.setAttribute('aria-label', `${room.unread} unread`);
        if (!shown.badge.isConnected) shown.button.append(shown.badge);
      } else {
        shown.badge.remove();
      }
      if (shown.item === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(shown.item, cursor);
    }
  }

  create(name) {
    const badge = element('span', { className: 'badge' });
    const button = element('button', { className: 'room-button', attrs: { type: 'button' } }, [
      element('span', { className: 'room-name', text: name }),
    ]);
    button.addEventListener('click', () => this.onOpen(name));
    const shown = { item: element('li', {}, [button]), button, badge };
    this.items.set(name, shown);
    return shown;
  }

  clear() {
    $('room-list').replaceChildren();
    this.items.clear();
    this.slide(false);
  }
}
