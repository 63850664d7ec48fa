'use strict';
// The plainest Node.js server a user would write instead of chatd: the WebSocket frames of
// SPEC.md ("WebSocket", "Details"), everything in memory, one process. It is a benchmark peer,
// so it is deliberately idiomatic rather than clever: one JSON.stringify per broadcast and a
// ws.send of that string to every member socket.
//
// Not implemented (not needed to compare delivery cost): REST, rate limits, token expiry or
// revocation on open sockets, `refresh`, Origin checks, edits/deletes, files.
//
//   CHATD_JWT_SECRET=... PORT=8090 node server.js

const http = require('http');
const crypto = require('crypto');
const jwt = require('jsonwebtoken');
const { WebSocketServer } = require('ws');

const SECRET = process.env.CHATD_JWT_SECRET;
const PORT = Number(process.env.PORT || 8090);
const HOST = '127.0.0.1';
const HISTORY_LATEST = 50;
const HISTORY_MAX = 1000;
const MAX_TEXT = 4000;
const SLOW_CONSUMER_BYTES = 1 << 20;
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

if (!SECRET) {
  console.error('CHATD_JWT_SECRET is required');
  process.exit(2);
}
// Made once: given the secret as a string, jsonwebtoken tries (and fails) to parse it as a PEM
// public key on every verify, which costs more CPU than all the rest of a handshake.
const KEY = crypto.createSecretKey(Buffer.from(SECRET));

// room name -> { seq, messages: [Message], sockets: Set<ws>, members: Set<username>, byClientId: Map }
const rooms = new Map();
// username -> Set<ws>: a user is online while this set is not empty
const online = new Map();
// username -> Set<room name>: membership survives disconnects until an explicit leave
const memberOf = new Map();

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { seq: 0, messages: [], sockets: new Set(), members: new Set(), byClientId: new Map() };
    rooms.set(name, r);
  }
  return r;
}

function send(ws, frame) {
  ws.send(JSON.stringify(frame));
}

function broadcast(r, frame, except) {
  const data = JSON.stringify(frame); // once, then the same string to every socket
  for (const ws of r.sockets) {
    if (ws === except) continue;
    if (ws.bufferedAmount > SLOW_CONSUMER_BYTES) {
      ws.close(4008, 'slow consumer');
      continue;
    }
    ws.send(data);
  }
}

// Typing, read and presence go to the *other* users' sockets in the room.
function toOthers(r, username, frame) {
  const data = JSON.stringify(frame);
  for (const ws of r.sockets) {
    if (ws.user.username !== username) ws.send(data);
  }
}

function error(ws, code, message, ref) {
  send(ws, { type: 'error', code, message, ref }); // an undefined ref is left out by JSON.stringify
}

function userView(user) {
  return {
    id: user.sub, username: user.username, email: null, role: user.role,
    created_at: new Date(typeof user.iat === 'number' ? user.iat * 1000 : Date.now()).toISOString(), online: true,
  };
}

const handlers = {
  ping(ws) {
    send(ws, { type: 'pong' });
  },

  join(ws, f) {
    if (f.since !== undefined && !Number.isInteger(f.since)) return error(ws, 'invalid_frame', 'since must be an integer');
    const name = f.room;
    const r = room(name);
    const username = ws.user.username;
    const isNewMember = !r.members.has(username);
    r.members.add(username);
    if (!memberOf.has(username)) memberOf.set(username, new Set());
    memberOf.get(username).add(name);
    ws.rooms.add(name);
    r.sockets.add(ws);

    let history;
    let truncated = false;
    if (f.since === undefined) {
      history = r.messages.slice(-HISTORY_LATEST);
    } else {
      history = r.messages.slice(Math.max(0, f.since)); // messages[i] has seq i + 1
      truncated = history.length > HISTORY_MAX;
      if (truncated) history = history.slice(0, HISTORY_MAX);
    }
    const members = [...r.members].filter((u) => online.has(u));
    send(ws, { type: 'joined', room: name, members, history, truncated: truncated || undefined });
    if (isNewMember) toOthers(r, username, { type: 'presence', room: name, user: username, event: 'join' });
  },

  leave(ws, f) {
    const r = rooms.get(f.room);
    const username = ws.user.username;
    r.members.delete(username);
    memberOf.get(username).delete(f.room);
    // Leaving ends the membership for every socket of this user.
    for (const other of online.get(username)) {
      other.rooms.delete(f.room);
      r.sockets.delete(other);
    }
    send(ws, { type: 'left', room: f.room });
    toOthers(r, username, { type: 'presence', room: f.room, user: username, event: 'leave' });
  },

  message(ws, f) {
    if (typeof f.text !== 'string' || f.text.length === 0) return error(ws, 'invalid_frame', 'text must be a non-empty string');
    if (f.client_id !== undefined && typeof f.client_id !== 'string') return error(ws, 'invalid_frame', 'client_id must be a string');
    if ([...f.text].length > MAX_TEXT) return error(ws, 'too_large', 'text is over 4000 characters');
    const r = rooms.get(f.room);
    const username = ws.user.username;
    const key = f.client_id === undefined ? null : `${username}\n${f.client_id}`;
    const clientId = f.client_id === undefined ? null : f.client_id;
    const seen = key && r.byClientId.get(key);
    if (seen) {
      send(ws, { type: 'ack', client_id: clientId, room: f.room, seq: seen.seq, id: seen.id, ts: seen.ts });
      return;
    }
    const msg = {
      room: f.room, seq: r.seq + 1, id: crypto.randomUUID(), user: username, text: f.text,
      ts: new Date().toISOString(), client_id: f.client_id,
    };
    r.seq = msg.seq;
    r.messages.push(msg);
    if (key) r.byClientId.set(key, msg);
    send(ws, { type: 'ack', client_id: clientId, room: f.room, seq: msg.seq, id: msg.id, ts: msg.ts });
    broadcast(r, { type: 'message', ...msg });
  },

  typing(ws, f) {
    if (typeof f.typing !== 'boolean') return error(ws, 'invalid_frame', 'typing must be a boolean');
    toOthers(rooms.get(f.room), ws.user.username, { type: 'typing', room: f.room, user: ws.user.username, typing: f.typing });
  },

  read(ws, f) {
    if (!Number.isInteger(f.seq)) return error(ws, 'invalid_frame', 'seq must be an integer');
    toOthers(rooms.get(f.room), ws.user.username, { type: 'read', room: f.room, user: ws.user.username, seq: f.seq });
  },
};

// Frames that act on a room the socket must already have joined.
const NEEDS_ROOM = new Set(['leave', 'message', 'typing', 'read']);

function onFrame(ws, data, isBinary) {
  if (isBinary) return error(ws, 'invalid_frame', 'frames must be text');
  let f;
  try {
    f = JSON.parse(data.toString('utf8'));
  } catch {
    return error(ws, 'invalid_json', 'frame is not valid JSON');
  }
  if (f === null || typeof f !== 'object' || Array.isArray(f) || typeof f.type !== 'string') {
    return error(ws, 'invalid_frame', 'a frame is a JSON object with a string "type"');
  }
  const handler = handlers[f.type];
  if (!handler) return error(ws, 'unknown_type', `unknown frame type ${f.type}`, f.type);
  if (f.type === 'join' || NEEDS_ROOM.has(f.type)) {
    if (typeof f.room !== 'string' || !ROOM_NAME.test(f.room)) return error(ws, 'invalid_frame', 'room must be 1-64 of [A-Za-z0-9_.-]');
    if (NEEDS_ROOM.has(f.type) && !ws.rooms.has(f.room)) return error(ws, 'not_in_room', `join ${f.room} first`, f.room);
  }
  handler(ws, f);
}

function presenceToMemberRooms(username, event) {
  for (const name of memberOf.get(username) || []) {
    toOthers(rooms.get(name), username, { type: 'presence', room: name, user: username, event });
  }
}

function onConnection(ws, user) {
  ws.user = user;
  ws.rooms = new Set();
  const first = !online.has(user.username);
  if (first) online.set(user.username, new Set());
  online.get(user.username).add(ws);
  if (first) presenceToMemberRooms(user.username, 'online');
  send(ws, { type: 'hello', user: userView(user), server_time: new Date().toISOString() });

  ws.on('message', (data, isBinary) => onFrame(ws, data, isBinary));
  ws.on('close', () => {
    for (const name of ws.rooms) rooms.get(name).sockets.delete(ws);
    const sockets = online.get(user.username);
    sockets.delete(ws);
    if (sockets.size === 0) {
      online.delete(user.username);
      presenceToMemberRooms(user.username, 'offline');
    }
  });
}

function verify(token) {
  try {
    const claims = jwt.verify(token, KEY, { algorithms: ['HS256'] });
    const ok = ['sub', 'username', 'role', 'jti'].every((k) => typeof claims[k] === 'string');
    return ok && typeof claims.exp === 'number' ? claims : null;
  } catch {
    return null;
  }
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"status":"ok","store":"ok"}');
  } else {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"code":"not_found","message":"Not found."}}');
  }
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', onConnection);

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  const user = url.pathname === '/ws' ? verify(url.searchParams.get('token') || '') : null;
  if (!user) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, user));
});

server.listen(PORT, HOST, () => console.log(`node peer listening on http://${HOST}:${PORT}`));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
