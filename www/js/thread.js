// A thread beside the room: its root, its replies (live as they come, older ones on request) and a box to
// reply in it. The replies are the room's messages (reducer.js keeps them in the Room, apart from the room's
// own list); this panel draws those whose reply_to is its root, with the same keyed Timeline as the room.

import { Timeline, entriesOf, wireMessageKeys } from './timeline.js';
import { MentionPicker } from './mentions.js';
import { $ } from './view.js';

export class ThreadPanel {
  /**
   * ``context()`` answers like RoomView's (room, pending, myId, myName, isAdmin, moderate) for the open room;
   * ``build(entry)`` makes a message's node; ``send(room, text, root)`` queues a reply.
   */
  constructor(api, { context, build, send, showError, names, toggled }) {
    this.api = api;
    this.toggled = toggled; // (): the panel opened or closed (the room's header redraws)
    this.context = context;
    this.send = send;
    this.showError = showError;
    this.room = null;   // the room's name, null while closed
    this.root = null;   // the root's seq
    this.before = null; // the cursor of older replies, null when all are loaded
    this.requested = false;
    this.timeline = new Timeline($('thread-list'), { build, patch: () => {} });
    wireMessageKeys($('thread-messages'));
    $('thread-close').addEventListener('click', () => this.close());
    $('thread-older').addEventListener('click', () => this.load(this.before));
    $('thread-composer').addEventListener('submit', (event) => { event.preventDefault(); this.reply(); });
    new MentionPicker($('thread-text'), names); // before Enter sends
    $('thread-text').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.reply();
      }
    });
    $('thread').addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !event.target.closest('.message')) {
        event.preventDefault();
        this.close();
      }
    });
  }

  get isOpen() {
    return this.room !== null;
  }

  /**
   * Open the thread of message ``seq`` of ``room`` (a name) and focus its reply box; with ``found`` (a reply's
   * seq, a search result) page back to that reply instead, and put it in view with the focus.
   */
  async open(room, seq, found) {
    this.room = room;
    this.root = seq;
    this.before = null;
    this.timeline.clear();
    $('thread').hidden = false;
    document.body.classList.add('thread-open');
    this.toggled();
    this.schedule();
    $('thread-text').focus();
    await this.load(null);
    if (found === undefined) return;
    const known = () => this.context().room?.messages.has(found);
    for (let guard = 0; guard < 200 && this.room === room && !known() && this.before !== null; guard += 1) {
      await this.load(this.before);
    }
    if (this.room !== room || this.root !== seq) return;
    this.requested = false;
    this.draw();
    const item = document.querySelector(`#thread-list .message[data-seq="${found}"]`);
    if (item) {
      item.scrollIntoView({ block: 'center' });
      item.classList.add('found');
      item.focus({ preventScroll: true });
    }
  }

  async load(before) {
    const { room, root } = this;
    try {
      const page = await this.api.thread(room, root, before);
      const known = this.context().room;
      if (this.room !== room || this.root !== root || !known || known.name !== room) return; // closed meanwhile
      known.keep(page.root);
      for (const message of page.messages) known.keep(message);
      this.before = page.next_before;
      this.schedule();
    } catch (e) {
      this.showError(e.message);
    }
  }

  /** Close the panel; the keyboard goes back (``refocus``) to the root in the room, or the room's list. */
  close(refocus = true) {
    if (!this.isOpen) return;
    const root = this.root;
    this.room = null;
    this.root = null;
    this.timeline.clear();
    $('thread').hidden = true;
    document.body.classList.remove('thread-open');
    this.toggled();
    if (!refocus) return;
    const item = document.querySelector(`#message-list .message[data-seq="${root}"]`);
    (item || $('messages')).focus({ preventScroll: Boolean(item) });
  }

  reply() {
    const text = $('thread-text').value;
    if (!text.trim() || !this.isOpen) return;
    this.send(this.room, text, this.root);
    $('thread-text').value = '';
    this.schedule(true);
  }

  /** Redraw once per animation frame (or 100 ms in a background tab); ``follow`` scrolls to the newest. */
  schedule(follow = false) {
    this.follow = this.follow || follow;
    if (this.requested) return;
    this.requested = true;
    const flush = () => {
      if (!this.requested) return;
      this.requested = false;
      this.draw();
    };
    requestAnimationFrame(flush);
    setTimeout(flush, 100);
  }

  draw() {
    const context = this.context();
    if (!this.isOpen || !context.room || context.room.name !== this.room) return;
    const scroller = $('thread-messages');
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    this.timeline.render(entriesOf(context.room, context.pending, { ...context, thread: this.root }));
    // The root's count is the server's (replies not loaded yet included); a reply just heard may precede it.
    const summary = context.room.messages.get(this.root)?.thread?.replies || 0;
    const replies = Math.max(summary, context.room.replies(this.root).length);
    $('thread-title').textContent = `Thread (${replies} ${replies === 1 ? 'reply' : 'replies'})`;
    $('thread-older').hidden = this.before === null || replies <= context.room.replies(this.root).length; // all here
    if (this.follow || atBottom) scroller.scrollTop = scroller.scrollHeight;
    this.follow = false;
  }
}
