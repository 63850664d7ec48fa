// What a message offers, shown when it is hovered or focused: Edit (its author, not for files), Delete (its
// author, the room's owner or a moderator, or an admin) and Ban (an admin, on someone else's message). The
// browser's own dialogs ask.

export class MessageActions {
  /** ``isAdmin()`` says whether the user is a site admin; ``showError(text)`` reports a refusal. */
  constructor(api, { isAdmin, showError }) {
    this.api = api;
    this.isAdmin = isAdmin;
    this.showError = showError;
  }

  /**
   * The {label, name, run} buttons of ``message`` in ``room``; ``own`` goes by user_id; ``moderate`` says
   * the user owns or moderates the room.
   */
  for(message, own, room, moderate = false) {
    const actions = [];
    const admin = this.isAdmin();
    if (own && !message.file) actions.push({ label: 'Edit', name: 'edit', run: () => this.edit(room, message) });
    if (own || admin || moderate) actions.push({ label: 'Delete', name: 'delete', run: () => this.delete(room, message) });
    if (admin && !own) actions.push({ label: `Ban ${message.user}`, name: 'ban', run: () => this.ban(message) });
    return actions;
  }

  async edit(room, message) {
    const text = prompt('Edit your message', message.text);
    if (text === null || text === message.text) return;
    try { await this.api.editMessage(room, message.seq, text); } catch (e) { this.showError(e.message); }
  }

  async delete(room, message) {
    if (!confirm('Delete this message?')) return;
    try { await this.api.deleteMessage(room, message.seq); } catch (e) { this.showError(e.message); }
  }

  // Bans the message's author by id: looking the name up would ban whoever holds it now.
  async ban(message) {
    const reason = prompt(`Ban ${message.user}? Reason (optional):`, '');
    if (reason === null) return;
    try { await this.api.ban(message.user_id, reason || undefined); } catch (e) { this.showError(e.message); }
  }
}
