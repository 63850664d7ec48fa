// Creating a room (POST /api/rooms): a dialog with its name, public or private, and an optional topic. The
// name is checked here as the server checks it; the server's refusals are shown next to their fields (a
// taken name: 409).

import { roomNameProblem } from './rooms.js';
import { $ } from './view.js';

const FIELDS = ['name', 'visibility', 'topic'];

export class RoomDialog {
  /** ``onCreated(room)`` receives the server's new Room (the user is its owner and only member). */
  constructor(api, { onCreated }) {
    this.api = api;
    this.onCreated = onCreated;
    $('new-room').addEventListener('click', () => this.open());
    $('create-cancel').addEventListener('click', () => $('create-dialog').close());
    $('create-form').addEventListener('submit', (event) => { event.preventDefault(); this.submit(); });
  }

  open() {
    $('create-form').reset();
    this.clearErrors();
    $('create-dialog').showModal();
    $('create-name').focus();
  }

  clearErrors() {
    for (const field of FIELDS) $(`error-${field}`).textContent = '';
    $('create-error').textContent = '';
    $('create-name').removeAttribute('aria-invalid');
  }

  async submit() {
    this.clearErrors();
    const name = $('create-name').value.trim();
    const visibility = $('create-form').elements.visibility.value;
    const topic = $('create-topic').value.trim();
    const problem = roomNameProblem(name);
    if (problem) {
      this.fieldError('name', problem);
      return;
    }
    $('create-submit').disabled = true;
    try {
      const room = await this.api.createRoom(name, visibility, topic || undefined);
      $('create-dialog').close();
      this.onCreated(room);
    } catch (e) {
      if (e.status === 409) this.fieldError('name', `The name "${name}" is taken: pick another.`);
      else if (Object.keys(e.fields).length) for (const [field, why] of Object.entries(e.fields)) this.fieldError(field, why);
      else $('create-error').textContent = e.message;
    } finally {
      $('create-submit').disabled = false;
    }
  }

  fieldError(field, why) {
    const target = FIELDS.includes(field) ? $(`error-${field}`) : $('create-error');
    target.textContent = FIELDS.includes(field) ? why : `${field}: ${why}`;
    if (field === 'name') {
      $('create-name').setAttribute('aria-invalid', 'true');
      $('create-name').focus();
    }
  }
}
