// Building DOM for messages and their parts. Every piece of user text goes in as text (textContent or text
// nodes), never as HTML; links are <a> elements made here, for http(s) addresses only.

import { timeOf } from './format.js';

export { ago, dayOf, fileSize, humanSizes, timeOf } from './format.js';

export const $ = (id) => document.getElementById(id);

/** Say ``text`` in the room's alert line: an ``error`` (a refusal) or a ``notice`` (invited, removed). */
export function say(text, kind) {
  $('alert-text').textContent = text;
  $('alert').dataset.kind = kind;
  $('alert').hidden = false;
}

export function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

export const INLINE_IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = '.,;:!?\'"]}>*';

// "see https://x.org." ends the sentence, not the link; a ")" closes the link only if it opened one inside.
function trimTrailing(candidate) {
  let end = candidate.length;
  for (;;) {
    const last = candidate[end - 1];
    const opened = () => candidate.slice(0, end).split('(').length - candidate.slice(0, end).split(')').length;
    if (last === ')' ? opened() >= 0 : !TRAILING.includes(last)) break;
    end -= 1;
  }
  return candidate.slice(0, end);
}

/**
 * ``text`` as nodes, with http(s) addresses as links that open apart (rel="noopener noreferrer"). Only
 * what parses as an http: or https: URL becomes a link; "javascript:" and the like stay text.
 */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const candidate = trimTrailing(match[0]);
    let url;
    try { url = new URL(candidate); } catch (e) { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    fragment.append(text.slice(last, match.index));
    fragment.append(element('a', { text: candidate, attrs: { href: url.href, target: '_blank', rel: 'noopener noreferrer' } }));
    last = match.index + candidate.length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

/**
 * One message as a list item. ``actions`` are {label, name, run} buttons (edit, delete, ban) the caller
 * allows: they show when the message is hovered or has the focus, so the keyboard passes one tab stop per
 * message list, not three per message. ``renderFile`` draws a file's body into the node it is given.
 */
export function messageItem(message, { own, pending, failed, seenBy, actions, renderFile }) {
  const item = element('li', {
    className: `message${own ? ' own' : ''}${pending ? ' pending' : ''}${message.deleted ? ' deleted' : ''}`,
    attrs: { 'data-seq': message.seq ?? '', 'data-user': message.user, 'data-user-id': message.user_id ?? '', tabindex: '-1' },
  });
  const head = element('div', { className: 'meta' }, [
    element('span', { className: 'author', text: message.user }),
    element('time', { text: timeOf(message.ts), attrs: { datetime: message.ts } }),
  ]);
  if (message.edited_at) head.append(element('span', { className: 'edited', text: '(edited)' }));
  if (pending) head.append(element('span', { className: 'state', text: failed || 'sending…' }));
  else if (own && !message.deleted) head.append(element('span', { className: 'state sent', text: 'sent' }));
  item.append(head);
  if (message.deleted) {
    item.append(element('p', { className: 'text', text: 'This message was deleted.' }));
  } else if (message.file) {
    const body = element('div', { className: 'file' });
    renderFile(body, message.file);
    item.append(body);
  } else {
    item.append(element('p', { className: 'text' }, [linkify(message.text)]));
  }
  if (actions && actions.length) {
    item.append(element('div', { className: 'actions' }, actions.map(({ label, name, run }) => {
      const button = element('button', { text: label, attrs: { type: 'button', 'data-focus': name } });
      button.addEventListener('click', run);
      return button;
    })));
  }
  seenLine(item, seenBy);
  return item;
}

/** Show (or take away) "Seen by …" under a message item. */
export function seenLine(item, seenBy) {
  let line = item.querySelector(':scope > .seen');
  if (!seenBy || !seenBy.length) {
    if (line) line.remove();
    return;
  }
  if (!line) {
    line = element('p', { className: 'seen' });
    item.append(line);
  }
  line.textContent = `Seen by ${seenBy.join(', ')}`;
}
