// Building DOM for messages, rooms and members. Every piece of user text goes in as text (textContent),
// never as HTML.

export const $ = (id) => document.getElementById(id);

export function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export const dayOf = (iso) => dayFormat.format(new Date(iso));
export const timeOf = (iso) => timeFormat.format(new Date(iso));

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const INLINE_IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

/**
 * One message as a list item. ``actions`` are {label, run} buttons (edit, delete, ban) the caller allows;
 * ``file`` renders a file's body (an image or a download button) into the node it is given.
 */
export function messageItem(message, { own, pending, seenBy, actions, renderFile }) {
  const item = element('li', {
    className: `message${own ? ' own' : ''}${pending ? ' pending' : ''}${message.deleted ? ' deleted' : ''}`,
    attrs: { 'data-seq': message.seq ?? '', 'data-user': message.user, 'data-user-id': message.user_id ?? '' },
  });
  const head = element('div', { className: 'meta' }, [
    element('span', { className: 'author', text: message.user }),
    element('time', { text: timeOf(message.ts), attrs: { datetime: message.ts } }),
  ]);
  if (message.edited_at) head.append(element('span', { className: 'edited', text: '(edited)' }));
  if (pending) head.append(element('span', { className: 'state', text: 'sending…' }));
  else if (own && !message.deleted) head.append(element('span', { className: 'state sent', text: 'sent' }));
  item.append(head);
  if (message.deleted) {
    item.append(element('p', { className: 'text', text: 'This message was deleted.' }));
  } else if (message.file) {
    const body = element('div', { className: 'file' });
    renderFile(body, message.file);
    item.append(body);
  } else {
    item.append(element('p', { className: 'text', text: message.text }));
  }
  if (actions && actions.length) {
    item.append(element('div', { className: 'actions' }, actions.map(({ label, run }) => {
      const button = element('button', { text: label, attrs: { type: 'button' } });
      button.addEventListener('click', run);
      return button;
    })));
  }
  if (seenBy && seenBy.length) item.append(element('p', { className: 'seen', text: `Seen by ${seenBy.join(', ')}` }));
  return item;
}

export function roomItem(name, { active, unread, onOpen }) {
  const button = element('button', { className: 'room-button', attrs: { type: 'button', 'aria-current': active ? 'page' : 'false' } }, [
    element('span', { className: 'room-name', text: name }),
    unread ? element('span', { className: 'badge', text: String(unread), attrs: { 'aria-label': `${unread} unread` } }) : null,
  ]);
  button.addEventListener('click', onOpen);
  return element('li', {}, [button]);
}
