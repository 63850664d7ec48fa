// "@" in a message box offers the room's usernames: typing narrows them, ↑/↓ pick, Enter or Tab puts
// "@name " in the text, Escape closes the list. The box is an ARIA combobox over a listbox of the names.

import { element } from './view.js';

const TYPED = /(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{0,32})$/; // an "@" not inside a word, up to the caret
const SHOWN = 8;

let lists = 0;

export class MentionPicker {
  /** ``textarea``: the message box; ``names()`` the usernames to offer (the open room's, not the user). Must be
   *  made before the box's own keydown handler (Enter sends), so a choice is not sent. */
  constructor(textarea, names) {
    this.textarea = textarea;
    this.names = names;
    lists += 1;
    this.list = element('ul', { className: 'mention-list', attrs: { id: `mention-list-${lists}`, role: 'listbox', 'aria-label': 'People to mention' } });
    this.list.hidden = true;
    textarea.after(this.list);
    textarea.setAttribute('role', 'combobox');
    textarea.setAttribute('aria-autocomplete', 'list');
    textarea.setAttribute('aria-controls', this.list.id);
    textarea.setAttribute('aria-expanded', 'false');
    this.options = [];
    this.selected = 0;
    textarea.addEventListener('input', () => this.update());
    textarea.addEventListener('blur', () => this.close());
    textarea.addEventListener('keydown', (event) => this.key(event));
  }

  update() {
    const { value, selectionStart } = this.textarea;
    const typed = TYPED.exec(value.slice(0, selectionStart));
    if (!typed) { this.close(); return; }
    const prefix = typed[1].toLowerCase();
    const names = [...new Set(this.names())].filter((name) => name.toLowerCase().startsWith(prefix)).sort().slice(0, SHOWN);
    if (!names.length) { this.close(); return; }
    this.options = names;
    this.selected = 0;
    this.draw();
  }

  draw() {
    this.list.replaceChildren(...this.options.map((name, index) => {
      const option = element('li', { text: name, attrs: { role: 'option', id: `${this.list.id}-${index}`, 'aria-selected': String(index === this.selected), 'data-user': name } });
      option.addEventListener('mousedown', (event) => { event.preventDefault(); this.choose(name); }); // keeps the focus
      return option;
    }));
    this.list.hidden = false;
    this.textarea.setAttribute('aria-expanded', 'true');
    this.textarea.setAttribute('aria-activedescendant', `${this.list.id}-${this.selected}`);
  }

  close() {
    this.options = [];
    this.list.hidden = true;
    this.textarea.setAttribute('aria-expanded', 'false');
    this.textarea.removeAttribute('aria-activedescendant');
  }

  key(event) {
    if (!this.options.length) return;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const step = event.key === 'ArrowDown' ? 1 : -1;
      this.selected = (this.selected + step + this.options.length) % this.options.length;
      this.draw();
    } else if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
      const typed = TYPED.exec(this.textarea.value.slice(0, this.textarea.selectionStart));
      const name = this.options[this.selected];
      if (event.key === 'Enter' && typed && typed[1].toLowerCase() === name.toLowerCase()) { // typed in full: Enter sends
        this.close();
        return;
      }
      this.choose(name);
    } else if (event.key === 'Escape') {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  /** Put "@name " in place of what was typed after the "@". */
  choose(name) {
    const box = this.textarea;
    const before = box.value.slice(0, box.selectionStart);
    const typed = TYPED.exec(before);
    if (!typed) { this.close(); return; }
    const start = before.length - typed[1].length;
    const rest = box.value.slice(box.selectionStart);
    box.value = `${before.slice(0, start)}${name} ${rest}`;
    const caret = start + name.length + 1;
    box.setSelectionRange(caret, caret);
    this.close();
    box.dispatchEvent(new Event('input')); // the count and "typing" see the change
  }
}
