// The search box: words typed in the top bar are looked for in every room the user may read (GET /api/search),
// the results listed newest first in a dialog with their room, author and time; "More results" pages back;
// picking one opens its room at that message.

import { $, dayOf, element, timeOf } from './view.js';

export class Search {
  /** ``label(room)`` is how a room is named on screen; ``onPick(message)`` opens a result. */
  constructor(api, { label, onPick }) {
    this.api = api;
    this.label = label;
    this.onPick = onPick;
    this.query = '';
    this.next = null;
    $('search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const query = $('search-q').value.trim();
      if (query) this.run(query);
    });
    $('search-more').addEventListener('click', () => this.more());
    $('search-close').addEventListener('click', () => $('search-dialog').close());
  }

  async run(query) {
    this.query = query;
    this.next = null;
    this.asked = null;
    this.generation = (this.generation || 0) + 1;
    $('search-results').replaceChildren();
    $('search-title').textContent = `Results for “${query}”`;
    $('search-status').textContent = 'Searching…';
    if (!$('search-dialog').open) $('search-dialog').showModal();
    await this.more(true);
  }

  /** The next page; a page already asked for (a double click) is not asked again, and an answer to an earlier
   *  search (a new one started meanwhile) is dropped, so no result shows twice. */
  async more(first = false) {
    const { query, generation } = this;
    const cursor = first ? null : this.next;
    const key = `${generation}\n${cursor}`;
    if (this.asked === key) return;
    this.asked = key;
    let page;
    try {
      page = await this.api.search(query, cursor);
    } catch (e) {
      if (this.asked === key) this.asked = null;
      $('search-status').textContent = e.message;
      return;
    }
    if (generation !== this.generation || cursor !== (first ? null : this.next)) return;
    const items = page.results.map((message) => this.item(message));
    $('search-results').append(...items);
    this.next = page.next;
    const count = $('search-results').childElementCount;
    $('search-status').textContent = count ? `${count} ${count === 1 ? 'message' : 'messages'}${this.next ? ' so far' : ''}` : 'Nothing found.';
    $('search-more').hidden = !this.next;
    if (items.length) items[0].querySelector('button').focus();
  }

  item(message) {
    const button = element('button', { className: 'search-result', attrs: { type: 'button', 'data-room': message.room, 'data-seq': message.seq } }, [
      element('span', { className: 'search-where' }, [
        element('span', { className: 'search-room', text: this.label(message.room) }),
        element('span', { className: 'author', text: message.user }),
        element('time', { text: `${dayOf(message.ts)} ${timeOf(message.ts)}`, attrs: { datetime: message.ts } }),
      ]),
      element('span', { className: 'search-text', text: message.text }),
    ]);
    button.addEventListener('click', () => {
      $('search-dialog').close();
      this.onPick(message);
    });
    return element('li', {}, [button]);
  }
}
