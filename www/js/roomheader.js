// The open room's header: its name (a direct room's people), a lock on a private room, its topic with an
// "Edit topic" form for the owner (or an admin; PATCH /api/rooms/{room}), the members panel's toggle, and
// Leave (not in a direct room, whose members are fixed).

import { powers } from './rooms.js';
import { lockMark } from './sidebar.js';
import { $ } from './view.js';

const WIDE = '(min-width: 721px)';

export class RoomHeader {
  /**
   * ``context()`` answers {room, me, admin}; ``showError(text)`` reports a refusal; ``thread()`` is the thread
   * panel, which takes the members panel's place on wide screens while it is open.
   */
  constructor(api, { context, showError, thread }) {
    this.api = api;
    this.context = context;
    this.showError = showError;
    this.thread = thread;
    this.editing = null; // the room whose topic is being edited
    $('room-lock').append(lockMark());
    $('topic-edit').addEventListener('click', () => this.edit());
    $('topic-cancel').addEventListener('click', () => this.stopEditing(true));
    $('topic-form').addEventListener('submit', (event) => { event.preventDefault(); this.save(); });
    $('topic-form').addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.stopEditing(true);
      }
    });
    // The members panel: beside the room on wide screens, folded away on phones until asked for. Asked for
    // while a thread is open in its place, it comes back and the thread closes.
    this.wide = matchMedia(WIDE);
    this.showMembers = this.wide.matches;
    $('members-toggle').addEventListener('click', () => {
      if (this.covered) {
        this.showMembers = true;
        this.thread().close(false);
      } else {
        this.showMembers = !this.showMembers;
      }
      this.render();
    });
  }

  /** The thread panel stands where the members panel would (wide screens only). */
  get covered() {
    return this.wide.matches && this.thread().isOpen;
  }

  /** Draw the header of the open room (or of the directory, with no room). */
  render() {
    const { room, me, admin } = this.context();
    $('room-title').textContent = room ? room.label : 'Rooms';
    $('room-lock').hidden = !(room && room.private);
    const topic = room && room.info ? room.info.topic : '';
    $('room-topic').textContent = topic;
    $('room-topic').hidden = !topic || this.editing === room?.name;
    const may = room ? powers(room, me, admin) : {};
    if (this.editing && (!room || this.editing !== room.name || !may.own)) this.stopEditing(false);
    $('topic-edit').hidden = !may.own || this.editing !== null;
    $('topic-edit').textContent = topic ? 'Edit topic' : 'Add a topic';
    $('leave').hidden = !room || !may.leave;
    $('members-toggle').hidden = !room;
    $('members-toggle').setAttribute('aria-expanded', String(this.showMembers && !this.covered));
    $('room-members').hidden = !room || !this.showMembers;
  }

  edit() {
    const { room } = this.context();
    if (!room) return;
    this.editing = room.name;
    $('topic-input').value = room.info ? room.info.topic : '';
    $('topic-error').textContent = '';
    $('topic-form').hidden = false;
    this.render();
    $('topic-input').focus();
  }

  stopEditing(refocus) {
    this.editing = null;
    $('topic-form').hidden = true;
    this.render();
    if (refocus && !$('topic-edit').hidden) $('topic-edit').focus();
  }

  async save() {
    const { room } = this.context();
    if (!room) return;
    try {
      room.info = await this.api.changeRoom(room.name, { topic: $('topic-input').value.trim() });
      this.stopEditing(true);
    } catch (e) {
      $('topic-error').textContent = (e.fields && e.fields.topic) || e.message;
    }
  }
}
