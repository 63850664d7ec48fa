// The open room's members panel (GET /api/rooms/{room}/members): everyone in the room with their role and
// whether they are online; for those allowed (SPEC.md "Rooms and roles"), adding people by name, removing
// them and changing roles. Buttons the user may not use are not there at all. Rows are kept by name and
// redrawn only when they change, so a presence event does not take the keyboard focus away.

import { powers } from './rooms.js';
import { $, element } from './view.js';

const ROLE_ORDER = { owner: 0, moderator: 1, member: 2 };

export class MembersPanel {
  /**
   * ``context()`` answers {room, me, admin} for the open room; ``changed(room)`` says the roster is in (the
   * header and sidebar name a direct room by it); ``showError(text)`` reports a refusal.
   */
  constructor(api, { context, changed, showError }) {
    this.api = api;
    this.context = context;
    this.changed = changed;
    this.showError = showError;
    this.rows = new Map(); // username → {node, sig}
    $('invite-form').addEventListener('submit', (event) => { event.preventDefault(); this.invite(); });
  }

  /** List ``room``'s members (again), then redraw. */
  async load(room, me) {
    try {
      const { members } = await this.api.members(room.name);
      room.setRoster(members, me);
      this.changed(room);
    } catch (e) { /* not a member (any more): the room goes with its `left` frame */ }
  }

  /** Another room (or none) is open. */
  reset() {
    $('members').replaceChildren();
    this.rows.clear();
    $('invite-error').textContent = '';
  }

  /** Draw the open room's members and the controls the user may use. */
  render() {
    const { room, me, admin } = this.context();
    if (!room) return;
    const may = powers(room, me, admin);
    $('invite-form').hidden = !may.moderate;
    $('invite-role').hidden = !may.own;
    if (!may.own) $('invite-role').value = 'member';
    const members = room.roster ? [...room.roster.entries()] : [...room.members].map((user) => [user, null]);
    members.sort(([a, ra], [b, rb]) => (ROLE_ORDER[ra] ?? 3) - (ROLE_ORDER[rb] ?? 3) || a.localeCompare(b));
    $('members-title').textContent = room.roster ? `Members (${members.length})` : 'Online';
    const list = $('members');
    const wanted = new Set(members.map(([user]) => user));
    for (const [user, shown] of this.rows) {
      if (!wanted.has(user)) {
        shown.node.remove();
        this.rows.delete(user);
      }
    }
    let cursor = list.firstChild;
    for (const [user, role] of members) {
      const online = room.members.has(user);
      const controls = user !== me && role !== 'owner' && role !== null;
      const remove = controls && may.moderate;
      const change = controls && may.own;
      const sig = `${role}|${online}|${remove}|${change}|${room.direct}`;
      let shown = this.rows.get(user);
      if (!shown || shown.sig !== sig) {
        const node = this.row(room.name, user, room.direct ? null : role, { online, remove, change, me: user === me });
        if (shown) replaceKeepingFocus(shown.node, node);
        if (shown && cursor === shown.node) cursor = node;
        shown = { node, sig };
        this.rows.set(user, shown);
      }
      if (shown.node === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(shown.node, cursor);
    }
  }

  row(roomName, user, role, { online, remove, change, me }) {
    const item = element('li', { className: 'member', attrs: { 'data-user': user, 'data-role': role || '', 'data-online': String(online) } }, [
      element('span', { className: 'member-name', text: me ? `${user} (you)` : user }),
      element('span', { className: 'visually-hidden', text: online ? ', online' : ', offline' }),
    ]);
    if (change) {
      const select = element('select', { attrs: { 'aria-label': `Role of ${user}`, 'data-focus': 'role' } },
        ['member', 'moderator', 'owner'].map((value) => element('option', { text: value, attrs: { value } })));
      select.value = role;
      select.addEventListener('change', () => this.setRole(roomName, user, role, select));
      item.append(select);
    } else if (role) {
      item.append(element('span', { className: `role role-${role}`, text: role }));
    }
    if (remove) {
      const button = element('button', { className: 'link', text: 'Remove', attrs: { type: 'button', 'aria-label': `Remove ${user}`, 'data-focus': 'remove' } });
      button.addEventListener('click', () => this.remove(roomName, user));
      item.append(button);
    }
    return item;
  }

  async invite() {
    const { room } = this.context();
    const user = $('invite-user').value.trim();
    $('invite-error').textContent = '';
    if (!room || !user) return;
    const role = $('invite-role').hidden ? undefined : $('invite-role').value;
    try {
      const member = await this.api.invite(room.name, user, role);
      $('invite-user').value = '';
      $('invite-role').value = 'member'; // a moderator is made on purpose, each time
      if (room.roster) room.roster.set(member.user, member.role); // the `member` frame says so too
      if (member.online) room.members.add(member.user);
      this.render();
    } catch (e) {
      $('invite-error').textContent = e.status === 404 ? `Nobody is called "${user}".` : e.message;
    }
  }

  async setRole(roomName, user, was, select) {
    if (select.value === 'owner' && !confirm(`Make ${user} the owner of ${roomName}? The owner now becomes a moderator.`)) {
      select.value = was;
      return;
    }
    try {
      await this.api.setRole(roomName, user, select.value);
    } catch (e) {
      select.value = was;
      this.showError(e.message);
    }
  }

  async remove(roomName, user) {
    if (!confirm(`Remove ${user} from ${roomName}?`)) return;
    try { await this.api.removeMember(roomName, user); } catch (e) { this.showError(e.message); }
  }
}

function replaceKeepingFocus(old, fresh) {
  const focused = document.activeElement;
  const had = focused && old.contains(focused) ? focused : null;
  old.replaceWith(fresh);
  if (!had) return;
  const target = fresh.querySelector(`[data-focus="${had.dataset.focus}"]`) || $('members');
  target.focus({ preventScroll: true });
}
