// The chat page: signs in, keeps the token fresh, and drives the rooms over SPEC.md's REST API and WebSocket.

import { Api, ApiError } from './api.js';
import { ChatSocket, CLOSE_BANNED, CLOSE_REVOKED } from './socket.js';
import { Room, ROOM_NAME } from './rooms.js';
import { $, INLINE_IMAGES, dayOf, element, fileSize, messageItem, roomItem } from './view.js';

const TOKEN_KEY = 'chatd.session';
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 6000;
const REFRESH_BEFORE_S = 60;
const RESEND_AFTER_MS = 3000;
const RESEND_EVERY_MS = 2000;
const RESEND_BATCH = 10;

const state = {
  session: JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null'), // {token, expires_at, user}
  me: null,
  rooms: new Map(), // name → Room
  active: null,     // name of the open room
  refreshTimer: null,
  typingSentAt: 0,
  typingIdle: null,
  registering: false,
  blobs: new Map(), // file url → object URL, fetched once
};

const api = new Api(() => state.session && state.session.token);
const socket = new ChatSocket({ getToken: () => state.session.token, onFrame, onState: showConnection, onClosed });

// Whose a message is goes by the author's id, never the username: a name can change hands after a rename.
const myId = () => state.session.user.id;
const myName = () => state.session.user.username;

// -- signing in ----------------------------------------------------------------------------------

function saveSession(session) {
  state.session = session;
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  if (!state.session) return;
  const seconds = (Date.parse(state.session.expires_at) - Date.now()) / 1000 - REFRESH_BEFORE_S;
  state.refreshTimer = setTimeout(refreshToken, Math.max(1, seconds) * 1000);
}

async function refreshToken() {
  try {
    const fresh = await api.refresh();
    saveSession({ ...state.session, token: fresh.token, expires_at: fresh.expires_at });
    socket.send({ type: 'refresh', token: fresh.token }); // the open socket now belongs to the new token
    return true;
  } catch (e) {
    if (e.status === 401 || e.status === 403) signOut(e.status === 403 ? 'Your account is banned.' : 'Your session has ended; log in again.');
    else state.refreshTimer = setTimeout(refreshToken, 10000); // the server is away: try again soon
    return false;
  }
}

function setMode(registering) {
  state.registering = registering;
  $('auth-title').textContent = registering ? 'Register' : 'Log in';
  $('auth-submit').textContent = registering ? 'Register' : 'Log in';
  $('switch-text').textContent = registering ? 'Have an account?' : 'No account yet?';
  $('auth-switch').textContent = registering ? 'Log in' : 'Register';
  $('field-email').hidden = !registering;
  document.querySelector('label[for=username]').textContent = registering ? 'Username' : 'Username or email';
  $('password').autocomplete = registering ? 'new-password' : 'current-password';
  clearErrors();
}

function clearErrors() {
  for (const id of ['error-username', 'error-email', 'error-password', 'auth-error']) $(id).textContent = '';
}

async function submitAuth(event) {
  event.preventDefault();
  clearErrors();
  const username = $('username').value.trim();
  const password = $('password').value;
  $('auth-submit').disabled = true;
  try {
    const result = state.registering
      ? await api.register(username, $('email').value.trim(), password)
      : await api.login(username, password);
    saveSession({ token: result.token, expires_at: result.expires_at, user: result.user });
    $('password').value = '';
    await enterChat();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    const fields = e.fields || {};
    for (const [name, why] of Object.entries(fields)) {
      const target = $(`error-${name === 'email' && !state.registering ? 'username' : name}`);
      if (target) target.textContent = why;
    }
    if (!Object.keys(fields).length) $('auth-error').textContent = e.message;
  } finally {
    $('auth-submit').disabled = false;
  }
}

function signOut(reason) {
  socket.stop();
  clearTimeout(state.refreshTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  state.session = null;
  state.rooms.clear();
  state.active = null;
  for (const url of state.blobs.values()) URL.revokeObjectURL(url);
  state.blobs.clear();
  $('chat').hidden = true;
  $('auth').hidden = false;
  setMode(false);
  if (reason) $('auth-error').textContent = reason;
  $('username').focus();
}

async function logout() {
  try { await api.logout(); } catch (e) { /* signed out locally either way */ }
  signOut();
}

// -- the chat ------------------------------------------------------------------------------------

async function enterChat() {
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('me').textContent = state.session.user.username;
  scheduleRefresh();
  try {
    const { sessions } = await api.sessions();
    for (const session of sessions) {
      const room = new Room(session.room);
      room.unread = session.unread;
      state.rooms.set(session.room, room);
    }
  } catch (e) {
    if (e.status === 401 || e.status === 403) return signOut(e.message);
  }
  renderRooms();
  if (state.rooms.size) openRoom([...state.rooms.keys()][0]);
  updateNotifyButton();
  socket.start();
}

function onClosed(code) {
  if (code === CLOSE_BANNED) {
    signOut('Your account is banned.');
    return false;
  }
  if (code === CLOSE_REVOKED) {
    // Expired or revoked: a fresh token, if the session still stands, then reconnect.
    refreshToken();
  }
  for (const room of state.rooms.values()) room.joined = false;
  return true;
}

function showConnection(status, delay) {
  const label = {
    connecting: 'Connecting…',
    online: 'Connected',
    offline: `Disconnected; reconnecting${delay ? ` in ${Math.ceil(delay / 1000)} s` : ''}…`,
    stopped: 'Offline',
  }[status];
  $('connection').textContent = label;
  $('connection').dataset.state = status;
}

function onFrame(frame) {
  const room = frame.room && state.rooms.get(frame.room);
  switch (frame.type) {
    case 'hello':
      state.me = frame.user;
      // The server's account as of now: a rename made elsewhere shows after a reconnect.
      saveSession({ ...state.session, user: frame.user });
      $('me').textContent = frame.user.username;
      // After a reconnect: every room again, from the last message seen, and unsent messages again
      // (the same client_id is stored once, so nothing is duplicated).
      for (const each of state.rooms.values()) sendJoin(each);
      break;
    case 'joined':
      if (!room) break;
      room.joined = true;
      room.members = new Set(frame.members);
      if (frame.truncated) { room.messages.clear(); room.oldestSeq = null; room.hasOlder = true; }
      for (const message of frame.history) room.add(message);
      if (frame.truncated) loadLatest(room);
      for (const [clientId, pending] of room.pending) {
        if (socket.send({ type: 'message', room: room.name, text: pending.text, client_id: clientId })) pending.sentAt = Date.now();
      }
      if (room.name === state.active) { renderRoom(); markRead(room); }
      renderRooms();
      break;
    case 'left':
      state.rooms.delete(frame.room);
      if (state.active === frame.room) { state.active = null; openRoom([...state.rooms.keys()][0] || null); }
      renderRooms();
      break;
    case 'message':
      if (room && room.add(frame)) onNewMessage(room, frame);
      break;
    case 'ack':
      if (room && room.pending.has(frame.client_id)) { room.pending.delete(frame.client_id); renderIfActive(room); }
      break;
    case 'presence':
      if (!room) break;
      if (frame.event === 'join' || frame.event === 'online') room.members.add(frame.user);
      else room.members.delete(frame.user);
      room.notices.push({ afterSeq: room.lastSeq, text: `${frame.user} ${{ join: 'joined', leave: 'left', online: 'is online', offline: 'went offline' }[frame.event]}` });
      renderIfActive(room);
      break;
    case 'typing':
      if (room) showTyping(room, frame.user, frame.typing);
      break;
    case 'read':
      if (room) { room.reads.set(frame.user, frame.seq); renderIfActive(room); }
      break;
    case 'edited':
      if (room) { room.edit(frame.seq, frame.text, frame.edited_at); renderIfActive(room); }
      break;
    case 'deleted':
      if (room) { room.remove(frame.seq); renderIfActive(room); }
      break;
    case 'error':
      if (frame.ref && resentLater(frame)) break;
      showRoomError(frame.message);
      break;
    default:
      break;
  }
}

// An error about a pending message: refused for good (too long, say), the message is dropped and the error
// shown (false); refused for now (rate limited, store away), resendPending sends it again (true).
const TRANSIENT = ['rate_limited', 'not_in_room', 'unavailable'];

function resentLater(frame) {
  for (const room of state.rooms.values()) {
    if (!room.pending.has(frame.ref)) continue;
    if (TRANSIENT.includes(frame.code)) return true;
    room.pending.delete(frame.ref);
    renderIfActive(room);
    return false;
  }
  return false;
}

// Every 2 s, the oldest messages still unacknowledged after 3 s are sent again, a few at a time so as to stay
// under the server's rate limit. Their client_id makes a resend stored once.
function resendPending() {
  const due = [];
  const now = Date.now();
  for (const room of state.rooms.values()) {
    if (!room.joined) continue;
    for (const [clientId, pending] of room.pending) {
      if (now - pending.sentAt > RESEND_AFTER_MS) due.push([room, clientId, pending]);
    }
  }
  due.sort((a, b) => a[2].sentAt - b[2].sentAt);
  for (const [room, clientId, pending] of due.slice(0, RESEND_BATCH)) {
    if (socket.send({ type: 'message', room: room.name, text: pending.text, client_id: clientId })) pending.sentAt = now;
  }
}

function sendJoin(room) {
  const frame = { type: 'join', room: room.name };
  if (room.messages.size) frame.since = room.lastSeq;
  socket.send(frame);
}

async function loadLatest(room) {
  try {
    const page = await api.history(room.name);
    for (const message of page.messages) room.add(message);
    room.hasOlder = page.next_before !== null;
    renderIfActive(room);
  } catch (e) { showRoomError(e.message); }
}

function onNewMessage(room, message) {
  const fromOthers = message.user_id !== myId();
  const watching = room.name === state.active && !document.hidden;
  if (fromOthers && !watching) room.unread += 1;
  if (fromOthers) clearTyping(room, message.user);
  if (room.name === state.active) {
    renderRoom({ follow: true });
    if (fromOthers) $('announcer').textContent = `${message.user}: ${message.file ? `shared ${message.file.name}` : message.text}`;
    if (watching) markRead(room);
  }
  renderRooms();
  if (fromOthers && document.hidden && 'Notification' in window && Notification.permission === 'granted') {
    new Notification(`${message.user} in ${room.name}`, { body: message.file ? message.file.name : message.text, tag: `chatd-${room.name}` });
  }
}

function markRead(room) {
  const last = room.lastSeq;
  if (last && room.joined) socket.send({ type: 'read', room: room.name, seq: last });
  room.unread = 0;
}

// -- rooms ---------------------------------------------------------------------------------------

function joinRoom(event) {
  event.preventDefault();
  const name = $('join-room').value.trim();
  $('join-error').textContent = '';
  if (!ROOM_NAME.test(name)) {
    $('join-error').textContent = '1 to 64 letters, digits, _ . or -';
    return;
  }
  if (name === '.' || name === '..') { // a URL would read them as "this" and "the parent" path segment
    $('join-error').textContent = `"${name}" cannot be a room name; use a letter or digit too.`;
    return;
  }
  if (!state.rooms.has(name)) {
    state.rooms.set(name, new Room(name));
    sendJoin(state.rooms.get(name));
  }
  $('join-room').value = '';
  openRoom(name);
  renderRooms();
}

function openRoom(name) {
  state.active = name;
  const room = name && state.rooms.get(name);
  $('room-title').textContent = name || 'No room open';
  $('leave').hidden = !room;
  $('composer').hidden = !room;
  $('typing').textContent = '';
  document.body.classList.remove('sidebar-open');
  $('rooms-toggle').setAttribute('aria-expanded', 'false');
  if (!room) { $('message-list').replaceChildren(); $('members').replaceChildren(); delete $('room').dataset.joined; return; }
  if (room.messages.size === 0 && room.hasOlder) loadLatest(room);
  renderRoom({ follow: true });
  markRead(room);
  renderRooms();
}

function leaveRoom() {
  if (state.active) socket.send({ type: 'leave', room: state.active });
}

function renderRooms() {
  $('room-list').replaceChildren(...[...state.rooms.values()].map((room) => roomItem(room.name, {
    active: room.name === state.active,
    unread: room.unread,
    onOpen: () => openRoom(room.name),
  })));
}

function renderIfActive(room) {
  if (room.name === state.active) renderRoom();
}

function renderRoom({ follow = false } = {}) {
  const room = state.rooms.get(state.active);
  if (!room) return;
  const list = $('messages');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const me = myName();
  const isAdmin = state.me ? state.me.role === 'admin' : state.session.user.role === 'admin';
  const messages = room.ordered();
  const lastOwnRead = [...messages].reverse().find((m) => m.user_id === myId() && !m.deleted);
  const items = [];
  let day = null;
  const notices = [...room.notices];
  for (const message of messages) {
    while (notices.length && notices[0].afterSeq < message.seq) {
      items.push(element('li', { className: 'notice', text: notices.shift().text }));
    }
    const messageDay = dayOf(message.ts);
    if (messageDay !== day) {
      items.push(element('li', { className: 'day', text: messageDay, attrs: { role: 'separator' } }));
      day = messageDay;
    }
    const own = message.user_id === myId();
    const actions = [];
    if (!message.deleted) {
      if (own && !message.file) actions.push({ label: 'Edit', run: () => editMessage(room, message) });
      if (own || isAdmin) actions.push({ label: 'Delete', run: () => deleteMessage(room, message) });
      if (isAdmin && !own) actions.push({ label: `Ban ${message.user}`, run: () => banUser(message) });
    }
    const seenBy = lastOwnRead && message.seq === lastOwnRead.seq ? room.readers(message.seq).filter((u) => u !== me) : [];
    items.push(messageItem(message, { own, pending: false, seenBy, actions, renderFile }));
  }
  for (const notice of notices) items.push(element('li', { className: 'notice', text: notice.text }));
  for (const [clientId, pending] of room.pending) {
    items.push(messageItem({ user: me, user_id: myId(), ts: pending.ts, text: pending.text, client_id: clientId }, { own: true, pending: true, renderFile }));
  }
  $('message-list').replaceChildren(...items);
  $('room').dataset.joined = String(room.joined); // uploads need the membership a join stores
  $('members').replaceChildren(...[...room.members].sort().map((user) => element('li', { text: user })));
  $('older').hidden = !room.hasOlder || room.messages.size === 0;
  if (follow || atBottom) list.scrollTop = list.scrollHeight;
}

async function loadOlder() {
  const room = state.rooms.get(state.active);
  if (!room || !room.hasOlder || room.loadingOlder || room.oldestSeq === null) return;
  room.loadingOlder = true;
  const list = $('messages');
  const fromBottom = list.scrollHeight - list.scrollTop;
  try {
    const page = await api.history(room.name, room.oldestSeq);
    for (const message of page.messages) room.add(message);
    room.hasOlder = page.next_before !== null;
    renderRoom();
    list.scrollTop = list.scrollHeight - fromBottom; // keep the reader where they were
  } catch (e) {
    showRoomError(e.message);
  } finally {
    room.loadingOlder = false;
  }
}

// -- writing ---------------------------------------------------------------------------------------

function sendMessage(event) {
  if (event) event.preventDefault();
  const room = state.rooms.get(state.active);
  const text = $('text').value;
  if (!room || !text.trim()) return;
  const clientId = crypto.randomUUID();
  room.pending.set(clientId, { text, ts: new Date().toISOString(), sentAt: Date.now() });
  socket.send({ type: 'message', room: room.name, text, client_id: clientId }); // or on rejoin, if offline
  $('text').value = '';
  stopTyping(room);
  renderRoom({ follow: true });
}

function onComposerKey(event) {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) sendMessage(event);
}

function onComposerInput() {
  const room = state.rooms.get(state.active);
  if (!room) return;
  const now = Date.now();
  if (now - state.typingSentAt > TYPING_SEND_EVERY_MS) {
    socket.send({ type: 'typing', room: room.name, typing: true });
    state.typingSentAt = now;
  }
  clearTimeout(state.typingIdle);
  state.typingIdle = setTimeout(() => stopTyping(room), TYPING_IDLE_MS);
}

function stopTyping(room) {
  clearTimeout(state.typingIdle);
  if (state.typingSentAt) socket.send({ type: 'typing', room: room.name, typing: false });
  state.typingSentAt = 0;
}

function showTyping(room, user, typing) {
  clearTimeout(room.typing.get(user));
  if (typing) room.typing.set(user, setTimeout(() => clearTyping(room, user), TYPING_SHOWN_MS));
  else room.typing.delete(user);
  renderTyping();
}

function clearTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
  renderTyping();
}

function renderTyping() {
  const room = state.rooms.get(state.active);
  const users = room ? [...room.typing.keys()] : [];
  $('typing').textContent = users.length === 0 ? ''
    : users.length === 1 ? `${users[0]} is typing…` : `${users.join(', ')} are typing…`;
}

async function editMessage(room, message) {
  const text = prompt('Edit your message', message.text);
  if (text === null || text === message.text) return;
  try { await api.editMessage(room.name, message.seq, text); } catch (e) { showRoomError(e.message); }
}

async function deleteMessage(room, message) {
  if (!confirm('Delete this message?')) return;
  try { await api.deleteMessage(room.name, message.seq); } catch (e) { showRoomError(e.message); }
}

// Bans the message's author by id: looking the name up would ban whoever holds it now.
async function banUser(message) {
  const reason = prompt(`Ban ${message.user}? Reason (optional):`, '');
  if (reason === null) return;
  try { await api.ban(message.user_id, reason || undefined); } catch (e) { showRoomError(e.message); }
}

// -- files -----------------------------------------------------------------------------------------

async function uploadFile(file) {
  const room = state.rooms.get(state.active);
  if (!room || !file) return;
  $('upload').hidden = false;
  $('upload-name').textContent = `${file.name} (${fileSize(file.size)})`;
  $('upload-progress').value = 0;
  try {
    await api.upload(room.name, file, (fraction) => { $('upload-progress').value = Math.round(fraction * 100); });
  } catch (e) {
    showRoomError(e.message);
  } finally {
    $('upload').hidden = true;
    $('file-input').value = '';
  }
}

function renderFile(node, file) {
  if (INLINE_IMAGES.includes(file.content_type)) {
    const image = element('img', { attrs: { alt: file.name, loading: 'lazy' } });
    node.append(image, element('span', { className: 'file-name', text: `${file.name} · ${fileSize(file.size)}` }));
    blobUrl(file.url).then((url) => { image.src = url; }).catch(() => { image.alt = `${file.name} (unavailable)`; });
    return;
  }
  const button = element('button', { className: 'download', text: `⬇ ${file.name} (${fileSize(file.size)})`, attrs: { type: 'button' } });
  button.addEventListener('click', async () => {
    try {
      const link = element('a', { attrs: { href: await blobUrl(file.url), download: file.name } });
      link.click();
    } catch (e) { showRoomError(e.message); }
  });
  node.append(button);
}

async function blobUrl(url) {
  if (!state.blobs.has(url)) state.blobs.set(url, URL.createObjectURL(await api.fileBlob(url)));
  return state.blobs.get(url);
}

function showRoomError(message) {
  $('typing').textContent = message;
  setTimeout(() => { if ($('typing').textContent === message) renderTyping(); }, 5000);
}

// -- notifications ---------------------------------------------------------------------------------

function updateNotifyButton() {
  $('notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
}

// -- wiring ----------------------------------------------------------------------------------------

function wire() {
  $('auth-form').addEventListener('submit', submitAuth);
  $('auth-switch').addEventListener('click', () => setMode(!state.registering));
  $('logout').addEventListener('click', logout);
  $('join-form').addEventListener('submit', joinRoom);
  $('leave').addEventListener('click', leaveRoom);
  $('composer').addEventListener('submit', sendMessage);
  $('text').addEventListener('keydown', onComposerKey);
  $('text').addEventListener('input', onComposerInput);
  $('file-input').addEventListener('change', () => uploadFile($('file-input').files[0]));
  $('messages').addEventListener('scroll', () => { if ($('messages').scrollTop < 40) loadOlder(); });
  $('notify').addEventListener('click', async () => { await Notification.requestPermission(); updateNotifyButton(); });
  $('rooms-toggle').addEventListener('click', () => {
    const open = document.body.classList.toggle('sidebar-open');
    $('rooms-toggle').setAttribute('aria-expanded', String(open));
  });
  const room = $('room');
  room.addEventListener('dragover', (event) => { event.preventDefault(); $('drop-hint').hidden = !state.active; });
  room.addEventListener('dragleave', () => { $('drop-hint').hidden = true; });
  room.addEventListener('drop', (event) => {
    event.preventDefault();
    $('drop-hint').hidden = true;
    if (event.dataTransfer.files.length) uploadFile(event.dataTransfer.files[0]);
  });
  document.addEventListener('visibilitychange', () => {
    const active = state.rooms.get(state.active);
    if (!document.hidden && active) { markRead(active); renderRooms(); }
  });
}

wire();
setInterval(resendPending, RESEND_EVERY_MS);
if (state.session && Date.parse(state.session.expires_at) > Date.now()) enterChat();
else signOut();
