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
export function linkify(text, me) {
  const fragment = document.createDocumentFragment();
  const plain = (part) => fragment.append(me ? highlight(part, me) : part);
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const candidate = trimTrailing(match[0]);
    let url;
    try { url = new URL(candidate); } catch (e) { continue; }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') continue;
    plain(text.slice(last, match.index));
    fragment.append(element('a', { text: candidate, attrs: { href: url.href, target: '_blank', rel: 'noopener noreferrer' } }));
    last = match.index + candidate.length;
  }
  plain(text.slice(last));
  return fragment;
}

/** ``text`` with every "@me" (as SPEC.md's "Mentions" reads them: case-insensitive, not inside a word) marked. */
export function highlight(text, me) {
  const fragment = document.createDocumentFragment();
  const escaped = me.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const pattern = new RegExp(`(?<![A-Za-z0-9_.\\-])@${escaped}(?![A-Za-z0-9_])`, 'giu');
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    fragment.append(text.slice(last, match.index), element('mark', { className: 'mention', text: match[0] }));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

/**
 * One message as a list item. ``actions`` are {label, name, run} buttons (edit, delete, ban) the caller
 * allows: they show when the message is hovered or has the focus, so the keyboard passes one tab stop per
 * message list, not three per message. ``renderFile`` draws a file's body into the node it is given.
 * ``react`` ({me, toggle(emoji, on)}) draws the reaction bar; ``onThread(seq)`` opens the thread of a root
 * whose replies are counted under it.
 */
export function messageItem(message, { own, pending, failed, seenBy, actions, renderFile, react, onThread }) {
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
    const me = react && react.me;
    item.append(element('p', { className: 'text' }, [linkify(message.text, me)]));
    if (me && (message.mentions || []).some((name) => name.toLowerCase() === me.toLowerCase())) item.classList.add('mentions-me');
  }
  if (actions && actions.length) {
    item.append(element('div', { className: 'actions' }, actions.map(({ label, name, run }) => {
      const button = element('button', { text: label, attrs: { type: 'button', 'data-focus': name } });
      button.addEventListener('click', run);
      return button;
    })));
  }
  if (react && !message.deleted && !pending) item.append(reactionBar(message, react));
  if (message.thread && message.thread.replies && onThread) item.append(threadLink(message, onThread));
  tabbableWhileInside(item);
  seenLine(item, seenBy);
  return item;
}

// The reaction toggles and the thread link are always shown but are tab stops only while the keyboard is in
// their message (reached with the arrow keys): the list stays one tab stop, as with the actions.
const INSIDE = '.reactions button, .reactions input, .thread-link';
function tabbableWhileInside(item) {
  const set = (value) => { for (const node of item.querySelectorAll(INSIDE)) node.tabIndex = value; };
  set(-1);
  item.addEventListener('focusin', () => set(0));
  item.addEventListener('focusout', (event) => { if (!item.contains(event.relatedTarget)) set(-1); });
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

/** The six emoji offered first; any other can be typed. */
export const COMMON_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/** "3 replies, last at 10:42": opens the thread. */
function threadLink(message, onThread) {
  const { replies, last_reply_at: last } = message.thread;
  const text = `${replies} ${replies === 1 ? 'reply' : 'replies'}${last ? `, last at ${timeOf(last)}` : ''}`;
  const button = element('button', { className: 'link thread-link', text, attrs: { type: 'button', 'data-focus': 'thread' } });
  button.addEventListener('click', () => onThread(message.seq));
  return button;
}

/**
 * The reactions under a message: one toggle per emoji (pressed when the user's, who reacted in its title),
 * and "Add reaction", which opens the six common emoji and a box for any other.
 */
function reactionBar(message, { me, toggle }) {
  const bar = element('div', { className: 'reactions' });
  for (const [emoji, users] of Object.entries(message.reactions || {})) {
    const mine = users.includes(me);
    const who = `Reacted ${emoji} by ${users.join(', ')}`;
    const button = element('button', {
      className: 'reaction',
      attrs: { type: 'button', 'aria-pressed': String(mine), title: who, 'aria-label': `${emoji} ${users.length}: ${who}`, 'data-emoji': emoji, 'data-focus': `r:${emoji}` },
    }, [element('span', { className: 'emoji', text: emoji }), element('span', { className: 'count', text: String(users.length) })]);
    button.addEventListener('click', () => toggle(emoji, !mine));
    bar.append(button);
  }
  const picker = element('div', { className: 'react-picker', attrs: { hidden: '' } });
  const add = element('button', {
    className: 'react-add', text: '☺+',
    attrs: { type: 'button', 'aria-label': 'Add reaction', title: 'Add reaction', 'aria-expanded': 'false', 'data-focus': 'react-add' },
  });
  add.addEventListener('click', () => {
    picker.hidden = !picker.hidden;
    add.setAttribute('aria-expanded', String(!picker.hidden));
    if (!picker.hidden) picker.querySelector('button').focus();
  });
  const mine = (emoji) => ((message.reactions || {})[emoji] || []).includes(me);
  for (const emoji of COMMON_EMOJI) {
    const button = element('button', { className: 'react-choice', text: emoji, attrs: { type: 'button', 'aria-label': `React ${emoji}`, 'data-emoji': emoji } });
    button.addEventListener('click', () => toggle(emoji, !mine(emoji)));
    picker.append(button);
  }
  const typed = element('input', { className: 'react-typed', attrs: { 'aria-label': 'Any emoji', placeholder: 'other', maxlength: '32', autocomplete: 'off' } });
  const send = () => {
    const emoji = typed.value.trim();
    if (emoji && !/\s/.test(emoji)) toggle(emoji, !mine(emoji));
  };
  typed.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); send(); }
  });
  const ok = element('button', { className: 'react-ok', text: 'Add', attrs: { type: 'button' } });
  ok.addEventListener('click', send);
  picker.append(typed, ok);
  bar.append(add, picker);
  return bar;
}
