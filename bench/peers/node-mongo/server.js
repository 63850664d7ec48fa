'use strict';
// The Node.js chat server a reader of this field's tutorials writes: the plain `ws` peer of
// ../node-server plus the official `mongodb` driver, so that its acks mean what chatd's mean:
// the message is stored. As the tutorial and seed apps do (with Mongoose, which does the same two
// calls), each message takes the room's next seq from a counter document
// (findOneAndUpdate + $inc, upsert), then insertOne, then the ack and the broadcast. A benchmark
// peer, so deliberately idiomatic rather than clever: no batching, no ordering of broadcasts, one
// JSON.stringify per broadcast.
//
// What that pattern gives up, on purpose (it is what is being compared): two messages of one room
// handled concurrently can be broadcast out of seq order (their inserts finish in either order), a
// message whose insert fails has burnt its seq (a gap), and so has a resent client_id (the unique
// index refuses the copy after its seq was taken; the original is acked again).
//
// Memberships and online state are in memory (socket rooms, as the tutorials keep them); history
// (`join`) is read from the store. Not implemented, as in ../node-server: REST, rate limits, token
// expiry or revocation on open sockets, `refresh`, Origin checks, edits/deletes, files.
//
//   CHATD_JWT_SECRET=... MONGODB_URI=mongodb://user:pass@127.0.0.1:27017/chat PORT=8091 node server.js

const http = require('http');
const crypto = require('crypto');
const jwt = require('jsonwebtoken');
const { MongoClient } = require('mongodb');
const { WebSocketServer } = require('ws');

const SECRET = process.env.CHATD_JWT_SECRET;
const MONGODB_URI = process.env.MONGODB_URI;
const PORT = Number(process.env.PORT || 8091);
const HOST = '127.0.0.1';
const HISTORY_LATEST = 50;
const HISTORY_MAX = 1000;
const MAX_TEXT = 4000;
const SLOW_CONSUMER_BYTES = 1 << 20;
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const DUPLICATE_KEY = 11000;

if (!SECRET || !MONGODB_URI) {
  console.error('CHATD_JWT_SECRET and MONGODB_URI are required');
  process.exit(2);
}
const KEY = crypto.createSecretKey(Buffer.from(SECRET)); // once: see ../node-server/server.js

// With a user in the URI and no mechanism named, the driver asks for SCRAM-SHA-256 (the store's
// hello does not list mechanisms); nx-27017 behind chatd's auth gate speaks SCRAM-SHA-1 only.
function clientOptions(uri) {
  const url = new URL(uri);
  return url.username && !url.searchParams.has('authMechanism') ? { authMechanism: 'SCRAM-SHA-1' } : {};
}

const client = new MongoClient(MONGODB_URI, clientOptions(MONGODB_URI));
const db = client.db(); // the URI's database ("test" when it names none)
const counters = db.collection('counters'); // { _id: room, seq }
const messages = db.collection('messages'); // { room, seq, id, user, text, ts, client_id? }

// room name -> { sockets: Set<ws>, members: Set<username> }
const rooms = new Map();
const online = new Map(); // username -> Set<ws>
const memberOf = new Map(); // username -> Set<room name>: membership survives disconnects

function room(name) {
  let r = rooms.get(name);
  if (!r) {
    r = { sockets: new Set(), members: new Set() };
    rooms.set(name, r);
  }
  return r;
}

function send(ws, frame) {
  ws.send(JSON.stringify(frame));
}

function broadcast(r, seq, frame) {
  const data = JSON.stringify(frame);
  for (const ws of r.sockets) {
    const waiting = ws.joining.get(frame.room);
    if (waiting) {
      waiting.push({ seq, data }); // its history is being read: sent after `joined`
      continue;
    }
    if (ws.bufferedAmount > SLOW_CONSUMER_BYTES) {
      ws.close(4008, 'slow consumer');
      continue;
    }
    ws.send(data);
  }
}

function toOthers(r, username, frame) {
  const data = JSON.stringify(frame);
  for (const ws of r.sockets) {
    if (ws.user.username !== username) ws.send(data);
  }
}

function error(ws, code, message, ref) {
  send(ws, { type: 'error', code, message, ref });
}

function userView(user) {
  return {
    id: user.sub, username: user.username, email: null, role: user.role,
    created_at: new Date(typeof user.iat === 'number' ? user.iat * 1000 : Date.now()).toISOString(), online: true,
  };
}

// A stored document as a `Message` of SPEC.md (no _id; ts as ISO text; client_id only when sent).
function messageView(doc) {
  const m = { room: doc.room, seq: doc.seq, id: doc.id, user: doc.user, text: doc.text, ts: doc.ts.toISOString() };
  if (doc.client_id !== undefined) m.client_id = doc.client_id;
  return m;
}

async function readHistory(name, since) {
  if (since === undefined) {
    const latest = await messages.find({ room: name }).sort({ seq: -1 }).limit(HISTORY_LATEST).toArray();
    return { history: latest.reverse().map(messageView), truncated: false };
  }
  const docs = await messages.find({ room: name, seq: { $gt: since } }).sort({ seq: 1 }).limit(HISTORY_MAX + 1).toArray();
  return { history: docs.slice(0, HISTORY_MAX).map(messageView), truncated: docs.length > HISTORY_MAX };
}

const handlers = {
  ping(ws) {
    send(ws, { type: 'pong' });
  },

  async join(ws, f) {
    if (f.since !== undefined && !Number.isInteger(f.since)) return error(ws, 'invalid_frame', 'since must be an integer');
    const name = f.room;
    const r = room(name);
    const username = ws.user.username;
    const isNewMember = !r.members.has(username);
    r.members.add(username);
    if (!memberOf.has(username)) memberOf.set(username, new Set());
    memberOf.get(username).add(name);
    // In the room from now on, so no message stored while the history is read is missed; those
    // wait in `joining` and go out after `joined` unless the history already had them.
    const waiting = [];
    ws.joining.set(name, waiting);
    ws.rooms.add(name);
    r.sockets.add(ws);
    let read;
    try {
      read = await readHistory(name, f.since);
    } finally {
      ws.joining.delete(name);
    }
    const members = [...r.members].filter((u) => online.has(u));
    send(ws, { type: 'joined', room: name, members, history: read.history, truncated: read.truncated || undefined });
    const highest = read.history.length ? read.history[read.history.length - 1].seq : (f.since || 0);
    for (const { seq, data } of waiting) if (seq > highest) ws.send(data);
    if (isNewMember) toOthers(r, username, { type: 'presence', room: name, user: username, event: 'join' });
  },

  leave(ws, f) {
    const r = rooms.get(f.room);
    const username = ws.user.username;
    r.members.delete(username);
    memberOf.get(username).delete(f.room);
    for (const other of online.get(username)) {
      other.rooms.delete(f.room);
      r.sockets.delete(other);
    }
    send(ws, { type: 'left', room: f.room });
    toOthers(r, username, { type: 'presence', room: f.room, user: username, event: 'leave' });
  },

  async message(ws, f) {
    if (typeof f.text !== 'string' || f.text.length === 0) return error(ws, 'invalid_frame', 'text must be a non-empty string');
    if (f.client_id !== undefined && typeof f.client_id !== 'string') return error(ws, 'invalid_frame', 'client_id must be a string');
    if ([...f.text].length > MAX_TEXT) return error(ws, 'too_large', 'text is over 4000 characters');
    const username = ws.user.username;
    const clientId = f.client_id === undefined ? null : f.client_id;
    // The tutorial's two calls: the room's next seq, then the message.
    const counter = await counters.findOneAndUpdate({ _id: f.room }, { $inc: { seq: 1 } }, { upsert: true, returnDocument: 'after' });
    const doc = { room: f.room, seq: counter.seq, id: crypto.randomUUID(), user: username, text: f.text, ts: new Date() };
    if (clientId !== null) doc.client_id = clientId;
    try {
      await messages.insertOne(doc);
    } catch (e) {
      if (e.code !== DUPLICATE_KEY || clientId === null) throw e;
      // A resent client_id: ack the stored original (the seq just taken stays unused).
      const seen = await messages.findOne({ room: f.room, user: username, client_id: clientId });
      if (!seen) throw e;
      return send(ws, { type: 'ack', client_id: clientId, room: f.room, seq: seen.seq, id: seen.id, ts: seen.ts.toISOString() });
    }
    const msg = messageView(doc);
    send(ws, { type: 'ack', client_id: clientId, room: f.room, seq: msg.seq, id: msg.id, ts: msg.ts });
    const r = rooms.get(f.room);
    if (r) broadcast(r, msg.seq, { type: 'message', ...msg });
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
  // The store's failures become an error frame (no ack: the client resends with its client_id).
  Promise.resolve(handler(ws, f)).catch((e) => {
    console.error(`${f.type} failed: ${e.message}`);
    error(ws, 'internal', 'the store failed', f.type === 'join' ? f.room : undefined);
  });
  return undefined;
}

function presenceToMemberRooms(username, event) {
  for (const name of memberOf.get(username) || []) {
    toOthers(rooms.get(name), username, { type: 'presence', room: name, user: username, event });
  }
}

function onConnection(ws, user) {
  ws.user = user;
  ws.rooms = new Set();
  ws.joining = new Map(); // room -> broadcasts held back while that room's history is read
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

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    db.command({ ping: 1 }).then(
      () => json(res, 200, { status: 'ok', store: 'ok' }),
      () => json(res, 503, { status: 'unavailable', store: 'down' }),
    );
  } else {
    json(res, 404, { error: { code: 'not_found', message: 'Not found.' } });
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

async function main() {
  await client.connect();
  // A seq is taken once per room; a client_id once per (room, user), among the messages that
  // have one (partial: MongoDB would otherwise index a missing client_id as null, and clash).
  await messages.createIndex({ room: 1, seq: 1 }, { unique: true });
  await messages.createIndex({ room: 1, user: 1, client_id: 1 },
    { unique: true, partialFilterExpression: { client_id: { $exists: true } } });
  server.listen(PORT, HOST, () => console.log(`node-mongo peer listening on http://${HOST}:${PORT}`));
}

main().catch((e) => {
  console.error(`node-mongo peer: cannot start: ${e.message}`);
  process.exit(1);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    setTimeout(() => process.exit(0), 2000).unref(); // a store that does not answer must not keep us
    client.close().finally(() => process.exit(0));
  });
}
