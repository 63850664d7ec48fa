// The chat page: wires the session, the socket, the outbox and the page's parts to what is on screen.
// Frames are handled in frames.js (FrameHandler); joining and opening rooms in roomnav.js (RoomNavigator).

import { MessageActions } from './actions.js';
import { roomInAddress, watchAddress } from './address.js';
import { Api } from './api.js';
import { AuthForm } from './auth.js';
import { Composer } from './composer.js';
import { Directory } from './directory.js';
import { DirectPicker } from './dmpicker.js';
import { Files } from './files.js';
import { FrameHandler } from './frames.js';
import { Loader } from './loader.js';
import { MembersPanel } from './members.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { People } from './people.js';
import { RoomDialog } from './roomdialog.js';
import { Search } from './search.js';
import { RoomHeader } from './roomheader.js';
import { Room, powers } from './rooms.js';
import { RoomNavigator } from './roomnav.js';
import { RoomView } from './roomview.js';
import { Session } from './session.js';
import { Sidebar } from './sidebar.js';
import { Signals } from './signals.js';
import { CLOSE_BANNED, CLOSE_REVOKED, ChatSocket } from './socket.js';
import { ThreadPanel } from './thread.js';
import { $, humanSizes, say } from './view.js';

const showNotice = (text) => say(text, 'notice'); // something that happened to the user: invited, removed

const state = { me: null, rooms: new Map(), active: null }; // active: the open room's name, null for the directory

const api = new Api(() => session.token);
const session = new Session(api, { onRefreshed: (token) => socket.send({ type: 'refresh', token }), onEnded: signOut });
const socket = new ChatSocket({ getToken: () => session.token, onFrame: (frame) => frames.handle(frame), onState: showConnection, onClosed });
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
const sidebar = new Sidebar({ onOpen: (name) => { nav.open(name); composer.focus(); }, onBrowse: () => nav.open(null) });
const directory = new Directory(api, { onOpen: (name) => nav.enter(name) });
const auth = new AuthForm(api, signedIn);
const notifier = new Notifier();
const actions = new MessageActions(api, { isAdmin: () => isAdmin(), showError });
const roomContext = () => ({ room: activeRoom(), me: myName(), admin: isAdmin() });
const header = new RoomHeader(api, { context: roomContext, showError, thread: () => thread });
const panel = new MembersPanel(api, { context: roomContext, changed: (room) => nav.described(room), showError });
const people = new People(api);
new DirectPicker(api, people, { me: () => myName(), onOpened: (info, names) => nav.adopt(info, names) });
new RoomDialog(api, { onCreated: (info) => nav.adopt(info) });
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
  older: (room) => loader.older(room, () => view.fromBottom),
  react: (message, emoji, on) => react(message, emoji, on),
  openThread: (seq) => state.active && thread.open(state.active, seq),
});
const thread = new ThreadPanel(api, {
  context: viewContext,
  build: (entry) => view.build(entry),
  send: (room, text, root) => outbox.add(room, text, root),
  showError,
  names: () => roomNames(),
  toggled: () => header.render(),
});

new Search(api, {
  label: (name) => (state.rooms.has(name) ? state.rooms.get(name).label : name),
  onPick: (message) => nav.reveal(message),
});

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
const nav = new RoomNavigator(api, {
  state, socket, outbox, signals, sidebar, directory, header, panel, view, thread, loader, composer, myName: () => myName(), showError, showNotice,
});
const frames = new FrameHandler({
  state, nav, session, socket, outbox, loader, panel, header, view, sidebar, thread, notifier, composer,
  myId: () => myId(), myName: () => myName(), watching: (name) => watching(name), showError, showNotice,
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
  const opened = nav.open(first);
  if (wanted && !state.rooms.has(wanted)) nav.enter(wanted); // joined once the socket is up, or refused
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
  nav.forgetJoins();
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
  nav.forgetJoins();
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

/** The user's reaction ``emoji`` added (``on``) or taken back on ``message``; the `reaction` frame redraws. */
function react(message, emoji, on) {
  const room = message.room || state.active;
  if (!socket.send({ type: 'react', room, seq: message.seq, emoji, on })) showError('Not connected: try again in a moment.');
}

function showError(text) {
  say(humanSizes(text), 'error');
}

// -- wiring ------------------------------------------------------------------------------------------

function wire() {
  $('logout').addEventListener('click', async () => {
    try { await api.logout(); } catch (e) { /* signed out here either way */ }
    signOut();
  });
  $('retry').addEventListener('click', () => socket.retryNow());
  $('join-form').addEventListener('submit', (event) => { event.preventDefault(); nav.enter($('join-room').value.trim()); });
  $('leave').addEventListener('click', () => state.active && socket.send({ type: 'leave', room: state.active }));
  $('alert-close').addEventListener('click', () => { $('alert').hidden = true; });
  $('messages').addEventListener('scroll', () => {
    if ($('messages').scrollTop < 40 && activeRoom()) loader.older(activeRoom(), () => view.fromBottom);
  });
  files.wire(() => state.active);
  watchAddress(() => state.active, (name) => session.valid && nav.enter(name));
  $('invite-user').addEventListener('focus', () => people.load());
  document.addEventListener('visibilitychange', () => {
    const active = activeRoom();
    if (!document.hidden && active) nav.markRead(active);
  });
}

wire();
if (session.valid) enterChat();
else signOut();
