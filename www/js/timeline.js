// The message list, drawn with keyed updates: every item (a day, a message, a notice, a message being sent)
// has a key, and a redraw only creates the items that are new or changed and moves none that stayed in
// place. An ack, a presence event or a read receipt touches one or two items; a new message adds one. A
// node that held the focus and is replaced hands it to its replacement, so the keyboard user stays put.

import { dayOf } from './format.js';

/**
 * The items of ``room`` in order, each ``{key, kind, value, look, sig, alias?}``: a new ``value`` or ``look``
 * (a string of whatever else shapes the item) redraws an item; a new ``sig`` (what can be changed in place:
 * "seen by") patches it; ``alias`` is the key of the item this one replaces (a sent message once stored).
 */
export function entriesOf(room, pending, { myId, myName, isAdmin, moderate, thread }) {
  const entries = [];
  // The room shows its messages without the replies (their root says how many); a thread (``thread``: the
  // root's seq) shows its root and replies, without the room's notices.
  const inThread = thread !== undefined;
  const root = inThread ? room.messages.get(thread) : null;
  const messages = inThread ? [root, ...room.replies(thread)].filter(Boolean)
    : room.ordered().filter((message) => message.reply_to === undefined);
  let seenSeq = null;
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    if (messages[i].user_id === myId && !messages[i].deleted) { seenSeq = messages[i].seq; break; }
  }
  const notices = inThread ? [] : room.notices;
  let next = 0;
  let day = null;
  for (const message of messages) {
    while (next < notices.length && notices[next].afterSeq < message.seq) {
      entries.push(noticeEntry(notices[next]));
      next += 1;
    }
    const messageDay = dayKey(message);
    if (messageDay !== day) {
      entries.push({ key: `d:${messageDay}`, kind: 'day', value: messageDay, look: '', sig: '' });
      day = messageDay;
    }
    const own = message.user_id === myId;
    const seenBy = message.seq === seenSeq ? room.readers(message.seq).filter((user) => user !== myName) : [];
    entries.push({
      key: `s:${message.seq}`,
      kind: 'message',
      value: message,
      look: `${own}|${isAdmin}|${Boolean(moderate)}|${myName}|${inThread}`,
      sig: seenBy.join(','),
      own,
      seenBy,
      inThread,
      alias: message.client_id ? `p:${message.client_id}` : undefined,
    });
  }
  for (; next < notices.length; next += 1) entries.push(noticeEntry(notices[next]));
  for (const [clientId, entry] of pending) {
    if (entry.replyTo !== (inThread ? thread : undefined)) continue; // a reply waits in its thread
    entries.push({ key: `p:${clientId}`, kind: 'pending', value: entry, look: '', sig: '', clientId });
  }
  return entries;
}

const noticeEntry = (notice) => ({ key: `n:${notice.id}`, kind: 'notice', value: notice, look: '', sig: '' });

// The day a message belongs to, formatted once per message (Intl formatting is the slow part of a redraw).
const days = new WeakMap();
function dayKey(message) {
  if (!days.has(message)) days.set(message, dayOf(message.ts));
  return days.get(message);
}

export class Timeline {
  /** ``list`` is the <ol> of items; ``build(entry)`` makes an item's node, ``patch(node, entry)`` updates
   *  its ``sig`` part in place. */
  constructor(list, { build, patch }) {
    this.list = list;
    this.build = build;
    this.patch = patch;
    this.nodes = new Map(); // key → {node, value, look, sig}
  }

  clear() {
    this.list.replaceChildren();
    this.nodes.clear();
  }

  /** Make the list show ``entries``, touching only what differs from what it shows. */
  render(entries) {
    const wanted = new Set();
    for (const entry of entries) {
      wanted.add(entry.key);
      if (entry.alias) wanted.add(entry.alias);
    }
    for (const [key, shown] of this.nodes) {
      if (!wanted.has(key)) {
        removeKeepingFocus(shown.node, this.list);
        this.nodes.delete(key);
      }
    }
    let cursor = this.list.firstChild;
    for (const entry of entries) {
      let shown = this.nodes.get(entry.key);
      if (shown && shown.value === entry.value && shown.look === entry.look && shown.sig !== entry.sig) {
        this.patch(shown.node, entry);
        shown.sig = entry.sig;
      }
      if (!shown || shown.value !== entry.value || shown.look !== entry.look) {
        const node = this.build(entry);
        node.dataset.key = entry.key;
        const old = shown ? shown.node : entry.alias && this.nodes.has(entry.alias) ? this.nodes.get(entry.alias).node : null;
        if (old) {
          if (cursor === old) cursor = node;
          replaceKeepingFocus(old, node);
          if (!shown) this.nodes.delete(entry.alias);
        }
        shown = { node, value: entry.value, look: entry.look, sig: entry.sig };
        this.nodes.set(entry.key, shown);
      }
      if (shown.node === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(shown.node, cursor);
    }
    while (cursor) { // anything left over is no longer wanted (an alias that found no replacement)
      const next = cursor.nextSibling;
      removeKeepingFocus(cursor, this.list);
      cursor = next;
    }
    for (const [key, shown] of this.nodes) if (!shown.node.isConnected) this.nodes.delete(key);
  }
}

function replaceKeepingFocus(old, fresh) {
  const focused = document.activeElement;
  const had = focused && old.contains(focused) ? focused : null;
  old.replaceWith(fresh);
  if (!had) return;
  const name = had.dataset ? had.dataset.focus : undefined;
  const target = (name && fresh.querySelector(`[data-focus="${name}"]`)) || fresh;
  target.focus({ preventScroll: true });
}

function removeKeepingFocus(node, list) {
  const focused = document.activeElement;
  const had = focused && node.contains(focused);
  const neighbour = node.previousElementSibling || node.nextElementSibling;
  node.remove();
  if (!had) return;
  const target = neighbour && neighbour.tabIndex >= -1 && neighbour.matches('.message') ? neighbour : list.closest('[tabindex]');
  if (target) target.focus({ preventScroll: true });
}

/**
 * Arrow keys inside the message list: the list is one tab stop, ↑/↓ (and Home/End) move between messages,
 * Tab from a message reaches its own actions and then the composer, Escape goes back to the list.
 */
export function wireMessageKeys(container) {
  container.addEventListener('keydown', (event) => {
    const items = () => [...container.querySelectorAll('.message')];
    const current = document.activeElement && document.activeElement.closest('.message');
    let target = null;
    if (event.key === 'ArrowUp' || event.key === 'ArrowDown') {
      const all = items();
      if (!all.length) return;
      const index = current ? all.indexOf(current) : all.length;
      const step = event.key === 'ArrowUp' ? -1 : 1;
      target = all[Math.min(all.length - 1, Math.max(0, index + step))];
    } else if (event.key === 'Home' && current) {
      target = items()[0];
    } else if (event.key === 'End' && current) {
      target = items().at(-1);
    } else if (event.key === 'Escape' && current) {
      target = container;
    }
    if (!target) return;
    event.preventDefault();
    target.focus();
  });
}
