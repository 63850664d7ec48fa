'use strict';
// The client sockets of the load and what they measure: one `Client` per socket, the `Meter` of
// the phase being measured, and the setup every scenario shares (connect in waves, join rooms).
//
// With several --url values (several nodes of one chatd cluster) each socket is on one node, and
// each message's text says which node its sender is on, so a receiver on another node can count
// its latency as cross-node as well.

const { performance } = require('perf_hooks');
const WebSocket = require('ws');
const { sleep, log, waitFor, makeUsers, mintToken } = require('./lib');

const CONNECT_TIMEOUT_MS = 15000;
const JOIN_TIMEOUT_MS = 60000;
const QUIET_MS = 500; // setup is over when no frame arrived for this long

// Counts for one measured phase ("step"). Frames of messages sent in another step are "stray".
class Meter {
  constructor(step) {
    this.step = step;
    this.sent = 0;
    this.acks = 0;
    this.deliveries = 0;
    this.crossDeliveries = 0; // to a socket on another node than the sender's
    this.stray = 0;
    this.gaps = 0; // seq numbers a socket skipped
    this.outOfOrder = 0; // a seq at or below one already seen on that socket
    this.latencies = [];
    this.crossLatencies = [];
    this.ackLatencies = [];
    this.errors = {};
    this.closes = 0;
  }
}

const run = {
  meter: new Meter(-1), // nothing is measured until a phase installs its own Meter
  pendingAcks: new Map(), // client_id -> send time
  lastFrameAt: 0,
  unexpectedCloses: 0,
  errorFramesLogged: 0,
};

function messageText(step, node, size, mention = null) {
  const head = `t=${performance.now().toFixed(3)} s=${step} n=${node} ` + (mention ? `@${mention} ` : '');
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

// --mention-pct / --reply-pct: a share of the messages mentions a room mate or replies in a thread,
// so the server's mention and thread bookkeeping is part of what is measured.
function chance(pct) {
  return pct > 0 && Math.random() * 100 < pct;
}

// The send time, step and sender's node stamped by messageText, or null for a text we did not write.
function parseStamp(text) {
  if (typeof text !== 'string' || !text.startsWith('t=')) return null;
  const [t, s, n] = text.split(' ', 3);
  const sentAt = Number(t.slice(2));
  const step = Number((s || '').slice(2));
  const node = Number((n || '').slice(2));
  return Number.isFinite(sentAt) && Number.isInteger(step) ? { sentAt, step, node } : null;
}

// -- one client socket --------------------------------------------------------------------------

class Client {
  constructor(opts, user, node = 0) {
    this.opts = opts;
    this.user = user;
    this.node = node; // index into opts.urls
    this.token = null;
    this.ws = null;
    this.lastSeq = new Map(); // room -> highest seq seen, to check order and gaps
    this.roots = new Map(); // room -> seq of a message that is no reply: what --reply-pct replies to
    this.mates = new Map(); // room -> usernames of the other members: whom --mention-pct mentions
    this.joinWaiters = new Map(); // room -> resolve
    this.sentCount = 0;
    this.closed = false;
    this.onServerClose = null; // (code, time) => void: a close the scenario expects (revocation)
  }

  // Resolves with the handshake time in ms (new WebSocket -> `hello`), or rejects.
  connect() {
    this.token = mintToken(this.opts, this.user);
    const url = `${this.opts.urls[this.node].wsUrl}?token=${encodeURIComponent(this.token)}`;
    const started = performance.now(); // the handshake time starts at `new WebSocket`
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('no hello in time')), CONNECT_TIMEOUT_MS);
      const fail = (err) => {
        clearTimeout(timer);
        this.closed = true;
        if (this.ws) this.ws.terminate();
        reject(err);
      };
      this.onHello = () => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      };
      this.ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: CONNECT_TIMEOUT_MS });
      this.ws.on('unexpected-response', (req, res) => fail(new Error(`HTTP ${res.statusCode}`)));
      this.ws.on('error', (err) => fail(err));
      this.ws.on('message', (data) => this.onFrame(data));
      this.ws.on('close', (code) => this.onClose(code, fail));
    });
  }

  onClose(code, fail) {
    const now = performance.now();
    if (this.closed) return;
    this.closed = true;
    if (this.onServerClose) {
      this.onServerClose(code, now);
      return;
    }
    run.unexpectedCloses++;
    run.meter.closes++;
    if (run.unexpectedCloses <= 5) log(`socket of ${this.user.username} closed by the server (${code})`);
    fail(new Error(`closed ${code}`)); // a no-op once connected
  }

  onFrame(data) {
    const now = performance.now();
    run.lastFrameAt = now;
    let frame;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      run.meter.errors.frame_not_json = (run.meter.errors.frame_not_json || 0) + 1;
      return undefined;
    }
    switch (frame.type) {
      case 'message': return this.onMessage(frame, now);
      case 'ack': return this.onAck(frame, now);
      case 'hello': return this.onHello();
      case 'joined': return this.onJoined(frame);
      case 'error': return this.onError(frame);
      default: return undefined; // presence, typing, read: not measured
    }
  }

  onMessage(frame, now) {
    const meter = run.meter;
    if (frame.reply_to === undefined && !this.roots.has(frame.room)) this.roots.set(frame.room, frame.seq);
    const last = this.lastSeq.get(frame.room) || 0;
    if (frame.seq <= last) meter.outOfOrder++;
    else {
      meter.gaps += frame.seq - last - 1;
      this.lastSeq.set(frame.room, frame.seq);
    }
    const stamp = parseStamp(frame.text);
    if (!stamp || stamp.step !== meter.step) {
      meter.stray++;
      return;
    }
    meter.deliveries++;
    meter.latencies.push(now - stamp.sentAt);
    if (stamp.node !== this.node) {
      meter.crossDeliveries++;
      meter.crossLatencies.push(now - stamp.sentAt);
    }
  }

  onAck(frame, now) {
    const sentAt = run.pendingAcks.get(frame.client_id);
    if (sentAt === undefined) return;
    run.pendingAcks.delete(frame.client_id);
    if (frame.client_id.startsWith(`${run.meter.step}.`)) {
      run.meter.acks++;
      run.meter.ackLatencies.push(now - sentAt);
    }
  }

  onJoined(frame) {
    const history = frame.history || [];
    const highest = history.length ? history[history.length - 1].seq : 0;
    this.lastSeq.set(frame.room, Math.max(this.lastSeq.get(frame.room) || 0, highest));
    const resolve = this.joinWaiters.get(frame.room);
    this.joinWaiters.delete(frame.room);
    if (resolve) resolve();
  }

  onError(frame) {
    run.meter.errors[frame.code] = (run.meter.errors[frame.code] || 0) + 1;
    if (run.errorFramesLogged++ < 5) log(`error frame: ${JSON.stringify(frame)}`);
    // A refused join would otherwise leave its waiter hanging until the timeout.
    const resolve = frame.ref !== undefined && this.joinWaiters.get(frame.ref);
    if (resolve) resolve();
  }

  join(room) {
    return new Promise((resolve) => {
      this.joinWaiters.set(room, resolve);
      this.ws.send(JSON.stringify({ type: 'join', room }));
    });
  }

  sendMessage(room, step) {
    const clientId = `${step}.${this.user.username}.${++this.sentCount}`;
    const mates = this.mates.get(room) || [];
    const mention = mates.length && chance(this.opts['mention-pct']) ? mates[Math.floor(Math.random() * mates.length)] : null;
    const frame = { type: 'message', room, text: messageText(step, this.node, this.opts['text-size'], mention), client_id: clientId };
    if (this.roots.has(room) && chance(this.opts['reply-pct'])) frame.reply_to = this.roots.get(room);
    run.pendingAcks.set(clientId, performance.now());
    this.ws.send(JSON.stringify(frame));
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close(1000);
  }
}

// -- setup shared by the scenarios --------------------------------------------------------------

// Open sockets for `users` in waves of `wave` at once, user k on node `nodeOf(k)` (default:
// round-robin over the URLs); answers the connected clients, the handshake times and the failures.
async function connectAll(opts, users, nodeOf = (k) => k % opts.urls.length) {
  const clients = [];
  const handshakes = [];
  const failures = {};
  for (let i = 0; i < users.length; i += opts.wave) {
    const wave = users.slice(i, i + opts.wave).map((user, j) => new Client(opts, user, nodeOf(i + j)));
    const outcomes = await Promise.allSettled(wave.map((client) => client.connect()));
    outcomes.forEach((outcome, j) => {
      if (outcome.status === 'fulfilled') {
        clients.push(wave[j]);
        handshakes.push(outcome.value);
      } else {
        const reason = outcome.reason.message;
        failures[reason] = (failures[reason] || 0) + 1;
      }
    });
  }
  return { clients, handshakes, failures };
}

// Each [client, room] pair joins; waits for every `joined` (bounded), then for the presence
// frames the joins caused to die down, so they do not land inside the measured phase.
async function joinAll(opts, pairs) {
  const started = performance.now();
  let answered = 0;
  for (let i = 0; i < pairs.length; i += opts.wave) {
    const wave = pairs.slice(i, i + opts.wave).map(([client, room]) => client.join(room).then(() => answered++));
    const all = Promise.all(wave);
    const done = await Promise.race([all.then(() => true), sleep(JOIN_TIMEOUT_MS).then(() => false)]);
    if (!done) throw new Error(`only ${answered}/${pairs.length} joins answered within ${JOIN_TIMEOUT_MS / 1000} s`);
  }
  await waitFor(() => performance.now() - run.lastFrameAt > QUIET_MS, 60000);
  log(`${pairs.length} joins in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function closeAll(clients) {
  for (const client of clients) client.close();
  const closed = await waitFor(() => clients.every((c) => c.ws.readyState === WebSocket.CLOSED), 15000, 100);
  if (!closed) clients.forEach((c) => c.ws.terminate());
}

// `roomCount` rooms of `perRoom` sockets. Socket k is in room k % roomCount (so a round-robin
// over sockets also cycles the rooms), and the members of each room alternate between the nodes.
async function setupRooms(opts, tag, roomCount, perRoom) {
  const users = await makeUsers(opts, roomCount * perRoom, tag);
  const nodes = opts.urls.length;
  const { clients, failures } = await connectAll(opts, users, (k) => Math.floor(k / roomCount) % nodes);
  if (clients.length !== users.length) throw new Error(`only ${clients.length}/${users.length} sockets opened: ${JSON.stringify(failures)}`);
  const rooms = Array.from({ length: roomCount }, (_, i) => `r${tag}-${i}`);
  const pairs = clients.map((client, k) => [client, rooms[k % roomCount]]);
  if (opts['mention-pct'] > 0) {
    const members = new Map(rooms.map((room) => [room, []]));
    for (const [client, room] of pairs) members.get(room).push(client.user.username);
    for (const [client, room] of pairs) {
      const others = members.get(room).filter((name) => name !== client.user.username);
      client.mates.set(room, others.slice(0, 50)); // a fan-out room has thousands: any 50 will do
    }
  }
  await joinAll(opts, pairs);
  return pairs;
}

module.exports = { Meter, Client, run, connectAll, joinAll, closeAll, setupRooms };
