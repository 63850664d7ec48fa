// The room directory (GET /api/rooms): what a newcomer sees instead of an empty screen, and what "Browse
// rooms" shows later. The rooms people use come first: the most members online, then the latest message,
// then the most members. The user's own private rooms show with a lock; direct rooms are in the sidebar only.

import { lockMark } from './sidebar.js';
import { $, ago, element } from './view.js';

export function byUse(a, b) {
  return (b.online - a.online)
    || (Date.parse(b.last_message_at || 0) - Date.parse(a.last_message_at || 0))
    || (b.members - a.members)
    || a.name.localeCompare(b.name);
}

export class Directory {
  /** ``onOpen(name)`` joins (if need be) and opens a room. */
  constructor(api, { onOpen }) {
    this.api = api;
    this.onOpen = onOpen;
  }

  /** Fetch and show the rooms; ``mine`` (a Set of names) are marked as already joined. */
  async show(mine) {
    const list = $('directory-list');
    $('directory-status').textContent = 'Loading rooms…';
    let rooms;
    try {
      ({ rooms } = await this.api.rooms());
    } catch (e) {
      $('directory-status').textContent = `The rooms could not be listed: ${e.message}`;
      return;
    }
    rooms = rooms.filter((room) => room.visibility !== 'direct').sort(byUse);
    $('directory-status').textContent = rooms.length
      ? 'Pick a room to join it, or start a new one under "Join a room".'
      : 'No rooms yet: start the first one under "Join a room".';
    list.replaceChildren(...rooms.map((room, index) => this.item(room, index === 0 && room.members > 0, mine.has(room.name))));
  }

  item(room, busiest, joined) {
    const details = [
      `${room.members} member${room.members === 1 ? '' : 's'}`,
      `${room.online} online`,
      ago(room.last_message_at),
    ].join(' · ');
    const button = element('button', { className: 'directory-open', attrs: { type: 'button' } }, [
      element('span', { className: 'directory-name' }, [room.visibility === 'private' ? lockMark() : null, room.name]),
      busiest ? element('span', { className: 'tag', text: 'most active' }) : null,
      element('span', { className: 'directory-details', text: details }),
      element('span', { className: 'directory-action', text: joined ? 'Open' : 'Join' }),
    ]);
    button.dataset.room = room.name;
    button.addEventListener('click', () => this.onOpen(room.name));
    return element('li', {}, [button]);
  }

  /** The first room's button, for the keyboard focus after signing in. */
  get first() {
    return $('directory-list').querySelector('button');
  }
}
