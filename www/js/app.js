// The chat page: wires the session, the socket, the outbox and the frame reducer to what is on screen.
// Frames go through reduce() (reducer.js), and each change it reports redraws only its part of the page.

import { MessageActions } from './actions.js';
import { roomInAddress, showInAddress, watchAddress } from './address.js';
import { Api } from './api.js';
import { AuthForm } from './auth.js';
import { Composer } from './composer.js';
import { Directory } from './directory.js';
import { DirectPicker } from './dmpicker.js';
import { Files } from './files.js';
import { Loader } from './loader.js';
import { MembersPanel } from './members.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { People } from './people.js';
import { reduce } from './reducer.js';
import { RoomDialog } from './roomdialog.js';
import { Search } from './search.js';
import { RoomHeader } from './roomheader.js';
import { Room, powers, roomNameProblem } from './rooms.js';
import { RoomView } from './roomview.js';
import { Session } from './session.js';
import { Sidebar } from './sidebar.js';
import { Signals } from './signals.js';
import { CLOSE_BANNED, CLOSE_REVOKED, ChatSocket } from './socket.js';
import { ThreadPanel } from './thread.js';
import { $, humanSizes, say } from './view.js';

const showNotice = (text) => say(text, 'notice'); // something that happened to the user: invited, removed

const state = { me: null, rooms: new Map(), active: null }; // active: the open room's name, null for the directory
// The rooms whose `join` awaits its answer, in the order sent: the server answers one socket's frames in order,
// so a `forbidden` without a ref is the refusal of the oldest (a private room the user is not a member of).
let awaiting = [];

const api = new Api(() => session.token);
const session = new Session(api, { onRefreshed: (token) => socket.send({ type: 'refresh', token }), onEnded: signOut });
const socket = new ChatSocket({ getToken: () => session.token, onFrame, onState: showConnection, onClosed });
const outbox = new Outbox({
  send: (frame) => socket.send(frame),
  unsend: () => socket.discard((frame) => frame.type === 'message'),
  onChange: (name) => {
    if (name === state.active) view.schedule({ timeline: true });
    if (name === thread.room) thread.schedule();
  },
});
const signals = new Signals({ send: (frame, key) => socket.send(frame, key) });
const files = new Files(api, showError);
const composer = new Composer({
  onSend: (text) => { outbox.add(state.active, text); view.schedule({ timeline: true, follow: true }); },
  onTyping: () => state.active && signals.typed(state.active),
  onStopTyping: () => state.active && signals.stopTyping(state.active),
  names: () => roomNames(),
});
const sidebar = new Sidebar({ onOpen: (name) => { openRoom(name); composer.focus(); }, onBrowse: () => openRoom(null) });
const directory = new Directory(api, { onOpen: enterRoom });
const auth = new AuthForm(api, signedIn);
const notifier = new Notifier();
const actions = new MessageActions(api, { isAdmin: () => isAdmin(), showError });
const roomContext = () => ({ room: activeRoom(), me: myName(), admin: isAdmin() });
const header = new RoomHeader(api, { context: roomContext, showError });
const panel = new MembersPanel(api, { context: roomContext, changed: described, showError });
const people = new People(api);
new DirectPicker(api, people, { me: () => myName(), onOpened: (info, names) => adopt(info, names) });
new RoomDialog(api, { onCreated: (info) => adopt(info) });
const view = new RoomView({
  context: viewContext,
  actionsFor: (message, own, inThread) => {
    const room = message.room || state.active;
    const offered = actions.for(message, own, room, moderating());
    if (!inThread && message.reply_to === undefined) {
      offered.push({ label: 'Reply', name: 'reply', run: () => thread.open(room, message.seq) });
    }
    return offered;
  },
  renderFile: (node, file) => files.render(node, file),
  drawMembers: () => panel.render(),
  react: (message, emoji, on) => react(message, emoji, on),
  openThread: (seq) => state.active && thread.open(state.active, seq),
});
const thread = new ThreadPanel(api, {
  context: viewContext,
  build: (entry) => view.build(entry),
  send: (room, text, root) => outbox.add(room, text, root),
  showError,
  names: () => roomNames(),
});

new Search(api, {
  label: (name) => (state.rooms.has(name) ? state.rooms.get(name).label : name),
  onPick: (message) => showMessage(message),
});

/** A search result: its room opened (joined first if need be), older pages loaded down to it, it in view and
 *  focused; a reply opens its thread as well. */
async function showMessage(message) {
  if (!state.rooms.has(message.room)) enterRoom(message.room);
  else openRoom(message.room);
  const room = state.rooms.get(message.room);
  if (!room) return;
  for (let waited = 0; room.tentative && waited < 100; waited += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  const seq = message.reply_to ?? message.seq;
  await loader.reach(room, seq);
  if (state.active !== room.name) return;
  view.schedule({ timeline: true });
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  view.flush();
  const item = document.querySelector(`#message-list .message[data-seq="${seq}"]`);
  if (item) {
    item.scrollIntoView({ block: 'center' });
    item.classList.add('found');
    item.focus({ preventScroll: true });
  }
  if (message.reply_to !== undefined) thread.open(room.name, message.reply_to);
}

/** The usernames "@" offers in the open room: its members as listed, who is online, who wrote; not the user. */
function roomNames() {
  const room = activeRoom();
  if (!room) return [];
  const names = new Set([...(room.roster ? room.roster.keys() : []), ...room.members]);
  for (const message of room.messages.values()) names.add(message.user);
  names.delete(myName());
  return [...names];
}
const loader = new Loader(api, {
  myId: () => myId(),
  changed: (room, parts) => { if (room.name === state.active) view.schedule(parts); },
  showError,
});

// Whose a message is goes by the author's id, never the username: a name can change hands after a rename.
const myId = () => session.user.id;
const myName = () => (state.me || session.user).username;
const isAdmin = () => (state.me || session.user).role === 'admin';
const activeRoom = () => (state.active ? state.rooms.get(state.active) : undefined);
const watching = (name) => name === state.active && !document.hidden;
const moderating = () => Boolean(activeRoom() && powers(activeRoom(), myName(), isAdmin()).moderate); // deletes any message

function viewContext() {
  const room = activeRoom();
  return { room, pending: room ? outbox.pendingIn(room.name) : [], myId: myId(), myName: myName(), isAdmin: isAdmin(), moderate: moderating() };
}

// -- signing in and out ----------------------------------------------------------------------------

async function signedIn(result) {
  session.save({ token: result.token, expires_at: result.expires_at, user: result.user });
  await enterChat();
}

async function enterChat() {
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('me').textContent = session.user.username;
  session.schedule();
  try {
    const [{ sessions }, { rooms }] = await Promise.all([api.sessions(), api.rooms()]);
    const records = new Map(rooms.map((info) => [info.name, info]));
    for (const each of sessions) {
      const room = new Room(each.room);
      room.unread = each.unread;
      room.mentions = each.mentions || 0;
      room.info = records.get(each.room) || null;
      state.rooms.set(each.room, room);
      if (room.direct) panel.load(room, myName()); // named by its people in the sidebar
    }
  } catch (e) {
    if (e.status === 401 || e.status === 403) { signOut(e.message); return; }
  }
  const wanted = roomInAddress();
  const first = state.rooms.has(wanted) ? wanted : state.rooms.keys().next().value || null;
  const opened = openRoom(first);
  if (wanted && !state.rooms.has(wanted)) enterRoom(wanted); // joined once the socket is up, or refused
  notifier.offer();
  socket.start();
  // The keyboard starts where the user will type: the composer, or the directory's busiest room.
  if (first) composer.focus();
  else await opened.then(() => (directory.first || $('join-room')).focus());
}

function signOut(reason) {
  thread.close();
  socket.stop();
  session.clear();
  outbox.clear();
  people.forget();
  awaiting = [];
  state.rooms.clear();
  state.active = null;
  state.me = null;
  files.clear();
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  view.reset();
  sidebar.clear();
  composer.clear();
  auth.show(reason);
}

function onClosed(code) {
  if (code === CLOSE_BANNED) {
    signOut('Your account is banned.');
    return false;
  }
  if (code === CLOSE_REVOKED) session.refresh(); // expired or revoked: a fresh token, then reconnect
  outbox.disconnected();
  awaiting = [];
  for (const room of state.rooms.values()) room.joined = false;
  view.schedule({ timeline: true });
  return true;
}

function showConnection(status, delay) {
  $('connection').textContent = {
    connecting: 'Connecting…',
    online: 'Connected',
    offline: `Disconnected; reconnecting${delay ? ` in ${Math.ceil(delay / 1000)} s` : ''}…`,
    stopped: 'Offline',
  }[status];
  $('connection').dataset.state = status;
  $('retry').hidden = status !== 'offline';
}

// -- frames ------------------------------------------------------------------------------------------

function onFrame(frame) {
  for (const change of reduce(state, frame, { myId: myId(), now: Date.now(), watching })) apply(change);
}

function apply(change) {
  const { room } = change;
  const open = room && room.name === state.active;
  switch (change.kind) {
    case 'hello':
      session.setUser(change.user);
      $('me').textContent = change.user.username;
      // Every room again from the last message seen, then what was not acknowledged, in order (the same
      // client_id is stored once). The server handles one socket's frames in order: joins come first.
      for (const each of state.rooms.values()) sendJoin(each);
      outbox.connected();
      break;
    case 'joined':
      answered(room.name);
      if (room.tentative && open) loader.reads(room);
      room.tentative = false;
      for (const message of change.messages) if (message.client_id) outbox.settle(message.client_id);
      if (change.truncated) loader.latest(room);
      if (!room.info) describe(room);
      if (open && !room.roster) panel.load(room, myName());
      if (open) markRead(room);
      sidebar.render(state.rooms, state.active);
      break;
    case 'left':
      gone(room, change.reason === 'removed' ? `You were removed from ${room.label}.` : null);
      break;
    case 'invited':
      sendJoin(room);
      if (room.direct) panel.load(room, myName());
      showNotice(room.direct ? `${change.by} started a direct conversation with you.` : `${change.by} added you to ${room.name}.`);
      sidebar.render(state.rooms, state.active);
      break;
    case 'info':
      described(room);
      break;
    case 'message':
      onMessage(change);
      break;
    case 'ack': {
      const entry = outbox.settle(change.frame.client_id);
      if (entry && room && !room.messages.has(change.frame.seq)) { // stored earlier; its broadcast was missed
        const { seq, id, ts, client_id: clientId } = change.frame;
        const stored = { room: room.name, seq, id, ts, user: myName(), user_id: myId(), text: entry.text, client_id: clientId };
        if (entry.replyTo !== undefined) stored.reply_to = entry.replyTo;
        room.add(stored);
        if (room.name === thread.room) thread.schedule();
        if (open) view.schedule({ timeline: true });
      }
      break;
    }
    case 'error':
      onError(change.frame);
      break;
    case 'thread':
      if (room.name === thread.room) thread.schedule();
      break;
    case 'mention':
      notifier.mention(room.label, change.frame, watching(room.name));
      sidebar.render(state.rooms, state.active);
      break;
    case 'members': // a role may have changed: the user's own buttons too
      if (open && change.reload) panel.load(room, myName());
      if (open) header.render();
      if (open) view.schedule({ members: true });
      break;
    default: // timeline, typing: that part of the open room is redrawn
      if (open) view.schedule({ [change.kind]: true });
      break;
  }
}

function onMessage({ room, message, isNew, fromOthers }) {
  if (message.client_id) outbox.settle(message.client_id);
  if (!isNew) return;
  if (room.name === state.active) {
    if (fromOthers) {
      $('announcer').textContent = `${message.user}: ${message.file ? `shared ${message.file.name}` : message.text}`;
      view.schedule({ typing: true });
    } else {
      view.schedule({ follow: true });
    }
    if (watching(room.name)) markRead(room);
  }
  if (fromOthers) {
    sidebar.render(state.rooms, state.active);
    notifier.message(room.name, message);
  }
}

/** The user's reaction ``emoji`` added (``on``) or taken back on ``message``; the `reaction` frame redraws. */
function react(message, emoji, on) {
  const room = message.room || state.active;
  if (!socket.send({ type: 'react', room, seq: message.seq, emoji, on })) showError('Not connected: try again in a moment.');
}

// A refused frame. Refusals of our messages are the outbox's: a passing one (rate limit, store away) is
// resent in order without bothering the user; a final one gives the text back with the reason.
function onError(frame) {
  if (frame.code === 'rate_limited') socket.slowDown();
  if (frame.code === 'forbidden' && !frame.ref && awaiting.length) {
    const name = awaiting.shift();
    const room = state.rooms.get(name);
    if (room && !room.joined) gone(room);
    showError(`You cannot open "${name}": ${frame.message}`);
    return;
  }
  const outcome = outbox.refused(frame);
  if (outcome && outcome.final) {
    composer.restore(outcome.entry.text);
    showError(`Not sent: ${frame.message}`);
  } else if (outcome) {
    if (frame.code === 'not_in_room' && state.rooms.has(outcome.entry.room)) sendJoin(state.rooms.get(outcome.entry.room));
  } else if (frame.code !== 'rate_limited') {
    showError(frame.message);
  }
}

function showError(text) {
  say(humanSizes(text), 'error');
}

// -- rooms -------------------------------------------------------------------------------------------

function sendJoin(room) {
  const frame = { type: 'join', room: room.name };
  if (room.messages.size) frame.since = room.lastSeq;
  if (socket.send(frame)) awaiting.push(room.name);
}

function answered(name) {
  const at = awaiting.indexOf(name);
  if (at >= 0) awaiting.splice(at, 1);
}

/** ``room`` is no longer the user's (left, removed, or its join refused): it goes, with ``why`` said. */
function gone(room, why) {
  state.rooms.delete(room.name);
  outbox.dropRoom(room.name);
  signals.forget(room.name);
  if (room.name === state.active) openRoom(state.rooms.keys().next().value || null);
  sidebar.render(state.rooms, state.active);
  if (why) showNotice(why);
}

/** The room's record (topic, visibility), for one the page met by name only (joined from the join box). */
async function describe(room) {
  try {
    room.info = await api.room(room.name);
    if (room.direct && !room.roster) await panel.load(room, myName());
    described(room);
  } catch (e) { /* not visible to this user: the join is refused and the room goes */ }
}

/** A room's record or members changed: its name, lock, topic and buttons are drawn again. */
function described(room) {
  sidebar.render(state.rooms, state.active);
  if (room.name === state.active) {
    header.render();
    view.schedule({ members: true });
  }
}

/** A room made here (POST /api/rooms or /api/dms): the user is a member already; join it and open it. */
function adopt(info, names) {
  let room = state.rooms.get(info.name);
  if (!room) {
    room = new Room(info.name);
    state.rooms.set(info.name, room);
  }
  room.info = info;
  if (names) room.people = names;
  if (!room.joined) sendJoin(room);
  openRoom(info.name);
  composer.focus();
}

function markRead(room) {
  if (room.lastSeq && room.joined) signals.read(room.name, room.lastSeq);
  if (room.unread || room.mentions) {
    room.unread = 0;
    room.mentions = 0;
    sidebar.render(state.rooms, state.active);
  }
}

/** Join (if need be) and open a room named in the join form or picked in the directory. */
function enterRoom(name) {
  $('join-error').textContent = roomNameProblem(name) || '';
  if (roomNameProblem(name)) return;
  if (!state.rooms.has(name)) { // listed once joined; a refused join (a private room) takes it away again
    const room = new Room(name);
    room.tentative = true;
    state.rooms.set(name, room);
    sendJoin(room);
  }
  $('join-room').value = '';
  openRoom(name);
  composer.focus();
}

/** Show a room, or with ``name`` null the directory; resolves once the directory is listed. */
function openRoom(name) {
  state.active = name;
  const room = activeRoom();
  for (const id of ['composer', 'messages']) $(id).hidden = !room;
  $('directory').hidden = Boolean(room);
  sidebar.slide(false);
  if (thread.room !== name) thread.close();
  view.reset();
  panel.reset();
  header.render();
  sidebar.render(state.rooms, state.active);
  showInAddress(name);
  if (!room) return directory.show(new Set(state.rooms.keys()));
  // Its history and members come over REST once the room is the user's (a join from the join box may be
  // refused: a private room's messages are asked for by its members only).
  if (!room.tentative) {
    if (room.messages.size === 0 && room.hasOlder) loader.latest(room);
    loader.reads(room);
    panel.load(room, myName());
  }
  view.schedule({ timeline: true, follow: true, members: true, typing: true });
  markRead(room);
  return Promise.resolve();
}

// -- wiring ------------------------------------------------------------------------------------------

function wire() {
  $('logout').addEventListener('click', async () => {
    try { await api.logout(); } catch (e) { /* signed out here either way */ }
    signOut();
  });
  $('retry').addEventListener('click', () => socket.retryNow());
  $('join-form').addEventListener('submit', (event) => { event.preventDefault(); enterRoom($('join-room').value.trim()); });
  $('leave').addEventListener('click', () => state.active && socket.send({ type: 'leave', room: state.active }));
  $('alert-close').addEventListener('click', () => { $('alert').hidden = true; });
  $('messages').addEventListener('scroll', () => {
    if ($('messages').scrollTop < 40 && activeRoom()) loader.older(activeRoom(), () => view.fromBottom);
  });
  files.wire(() => state.active);
  watchAddress(() => state.active, (name) => session.valid && enterRoom(name));
  $('invite-user').addEventListener('focus', () => people.load());
  document.addEventListener('visibilitychange', () => {
    const active = activeRoom();
    if (!document.hidden && active) markRead(active);
  });
}

wire();
if (session.valid) enterChat();
else signOut();
