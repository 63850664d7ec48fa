// The composer: Enter sends, Shift+Enter makes a new line. A message over the server's 4,000 characters is
// refused here, before sending, and its text stays where it was; a count shows from 3,500 characters on.

import { MentionPicker } from './mentions.js';
import { $ } from './view.js';

export const MAX_CHARS = 4000;       // SPEC.md: text is 1–4000 Unicode code points
const COUNT_FROM = MAX_CHARS - 500;

// Code points, as the server counts them (an emoji is one, not two UTF-16 units).
const length = (text) => [...text].length;

export class Composer {
  /** ``onSend(text)`` sends a message; ``onTyping()`` and ``onStopTyping()`` report the user's typing;
   *  ``names()`` the usernames "@" offers. */
  constructor({ onSend, onTyping, onStopTyping, names }) {
    this.onSend = onSend;
    this.onTyping = onTyping;
    this.onStopTyping = onStopTyping;
    this.text = $('text');
    this.mentions = new MentionPicker(this.text, names);
    $('composer').addEventListener('submit', (event) => { event.preventDefault(); this.send(); });
    this.text.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.text.addEventListener('input', () => {
      this.count();
      if (this.text.value) this.onTyping();
      else this.onStopTyping();
    });
  }

  /** Send what is typed, unless it is empty or too long (then say so and keep it). */
  send() {
    const text = this.text.value;
    if (!text.trim()) return;
    const size = length(text);
    if (size > MAX_CHARS) {
      this.count();
      $('count-error').textContent = `Too long to send: ${size.toLocaleString('en')} characters, the limit is `
        + `${MAX_CHARS.toLocaleString('en')}. Shorten it or split it into several messages.`;
      return;
    }
    this.onSend(text);
    this.text.value = '';
    this.count();
    this.onStopTyping();
  }

  /** Give text back (a message the server refused for good), unless something new is being written. */
  restore(text) {
    if (!this.text.value) this.text.value = text;
    this.count();
  }

  /** The character count near the limit, and its warning past it. */
  count() {
    const size = this.text.value.length >= COUNT_FROM ? length(this.text.value) : 0;
    const counter = $('count');
    counter.hidden = size < COUNT_FROM;
    counter.textContent = `${size.toLocaleString('en')} / ${MAX_CHARS.toLocaleString('en')}`;
    counter.classList.toggle('over', size > MAX_CHARS);
    this.text.setAttribute('aria-invalid', String(size > MAX_CHARS));
    if (size <= MAX_CHARS) $('count-error').textContent = '';
  }

  focus() {
    this.text.focus();
  }

  clear() {
    this.text.value = '';
    this.count();
  }
}
