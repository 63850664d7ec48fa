// Starting a direct conversation (POST /api/dms): a dialog where the user adds one to eight people by name
// (offered as they type), sees them as a list they can take names off again, and starts it. The server
// answers with the one direct room of exactly these people, new or already there.

import { $, element } from './view.js';

export const MAX_PEOPLE = 8;

export class DirectPicker {
  /** ``people`` knows the usernames; ``me()`` is the user's name; ``onOpened(room, names)`` opens the room. */
  constructor(api, people, { me, onOpened }) {
    this.api = api;
    this.people = people;
    this.me = me;
    this.onOpened = onOpened;
    this.picked = [];
    $('new-dm').addEventListener('click', () => this.open());
    $('dm-cancel').addEventListener('click', () => $('dm-dialog').close());
    $('dm-add').addEventListener('click', () => this.add());
    // Enter in the name field adds the name typed; with nothing typed it starts the conversation.
    $('dm-form').addEventListener('submit', (event) => {
      event.preventDefault();
      if ($('dm-user').value.trim()) this.add();
      else this.start();
    });
  }

  open() {
    this.picked = [];
    this.draw();
    $('dm-user').value = '';
    $('dm-error').textContent = '';
    this.people.load();
    $('dm-dialog').showModal();
    $('dm-user').focus();
  }

  /** Add the name typed, if it is someone else, known, not there yet, and there is room for them. */
  add() {
    const typed = $('dm-user').value.trim();
    if (!typed) return;
    const name = this.people.known ? this.people.find(typed) : typed;
    let problem = null;
    if (!name) problem = `Nobody is called "${typed}".`;
    else if (name.toLowerCase() === this.me().toLowerCase()) problem = 'You are in it already: add the others.';
    else if (this.picked.some((each) => each.toLowerCase() === name.toLowerCase())) problem = `${name} is added already.`;
    else if (this.picked.length >= MAX_PEOPLE) problem = `A direct message has at most ${MAX_PEOPLE} other people.`;
    $('dm-error').textContent = problem || '';
    if (problem) return;
    this.picked.push(name);
    $('dm-user').value = '';
    this.draw();
    $('dm-user').focus();
  }

  draw() {
    $('dm-picked').replaceChildren(...this.picked.map((name) => {
      const remove = element('button', { className: 'link', text: 'Remove', attrs: { type: 'button', 'aria-label': `Remove ${name}` } });
      remove.addEventListener('click', () => {
        this.picked = this.picked.filter((each) => each !== name);
        this.draw();
        $('dm-user').focus();
      });
      return element('li', { attrs: { 'data-user': name } }, [element('span', { text: name }), remove]);
    }));
    $('dm-submit').textContent = this.picked.length ? `Start with ${this.picked.length === 1 ? this.picked[0] : `${this.picked.length} people`}` : 'Start';
  }

  async start() {
    if (!this.picked.length) {
      $('dm-error').textContent = 'Add someone first.';
      return;
    }
    $('dm-submit').disabled = true;
    try {
      const room = await this.api.openDirect(this.picked);
      $('dm-dialog').close();
      this.onOpened(room, [...this.picked].sort());
    } catch (e) {
      $('dm-error').textContent = (e.fields && e.fields.users && e.message) || e.message;
    } finally {
      $('dm-submit').disabled = false;
    }
  }
}
