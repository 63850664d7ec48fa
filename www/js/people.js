// The signed-up users by name (GET /api/users, page by page), for picking people: the names offered while
// typing (a <datalist>) and the registered spelling of a typed name. No DOM but the datalist.

import { $, element } from './view.js';

const MAX_PAGES = 10; // 2,000 names offered at most; any other name can still be typed in full

export class People {
  constructor(api) {
    this.api = api;
    this.names = new Map(); // lowercased username → username
    this.loading = null;
  }

  /** Fetch the names once (again after ``forget``); resolves when they are in the datalist. */
  load() {
    if (!this.loading) this.loading = this.fetch().catch(() => { this.loading = null; });
    return this.loading;
  }

  async fetch() {
    let after = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const { users, next } = await this.api.users(after);
      for (const user of users) this.names.set(user.username.toLowerCase(), user.username);
      if (!next) break;
      after = next;
    }
    $('known-users').replaceChildren(...[...this.names.values()].sort().map((name) => element('option', { attrs: { value: name } })));
  }

  /** The registered spelling of ``name`` (usernames match case-insensitively), or null when unknown. */
  find(name) {
    return this.names.get(name.toLowerCase()) || null;
  }

  /** Whether the names have been listed (before that, any name is let through to the server). */
  get known() {
    return this.names.size > 0;
  }

  forget() {
    this.names.clear();
    this.loading = null;
    $('known-users').replaceChildren();
  }
}
