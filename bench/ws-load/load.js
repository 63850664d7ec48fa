'use strict';
// WebSocket load generator for chatd (SPEC.md, "WebSocket") and its Node peer.
//
//   node load.js --url http://127.0.0.1:8090 --secret <jwt secret> --scenario fanout
//   node load.js ... --scenario fanout --find-max
//   node load.js ... --scenario rooms
//   node load.js ... --scenario connections --connections 5000 --wave 100
//   add --register against chatd: users are registered over REST so each token's `sub` is real.
//
// Everything runs in this one process (many sockets, paced by timers). Latency is measured on
// the same clock that stamped the message: the text of every message starts with
// "t=<performance.now() ms> s=<step> ", and each receiving socket subtracts that from the time
// its frame arrived. The JSON summary goes to stdout, progress and one human line to stderr.
//
// Lines "@@mark <name>" on stderr tell an orchestrator (bench/ws_bench.py) when a measured
// phase starts and ends, so it can sample the server's CPU and memory at those instants.

const http = require('http');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');

const DEFAULTS = {
  url: 'http://127.0.0.1:8080',
  secret: process.env.CHATD_JWT_SECRET || '',
  scenario: 'fanout',
  register: false,
  'find-max': false,
  receivers: 500,
  senders: 5,
  rate: null, // msgs/s; the scenario's default when not given
  duration: 20, // s
  'step-duration': 10, // s, per --find-max step
  'p99-target': 100, // ms, for --find-max
  'max-rate': 5000, // msgs/s, the last --find-max step tried
  rooms: 200,
  members: 5,
  connections: 5000,
  wave: 100,
  settle: 10, // s the idle connections stay open
  drain: 5, // s to wait for late deliveries after the last send
  'text-size': 64, // characters per message text
  'token-ttl': 3600,
  'time-limit': 900, // s; the whole run is abandoned after this
};
const DEFAULT_RATE = { fanout: 20, rooms: 1000 };
const FIND_MAX_RATES = [20, 40, 80, 120, 160, 200, 300, 400, 500, 600, 800, 1000, 1200, 1600, 2000, 3000, 4000, 5000];
const TICK_MS = 10; // pacing timer period
const CONNECT_TIMEOUT_MS = 15000;
const JOIN_TIMEOUT_MS = 60000;
const QUIET_MS = 500; // setup is over when no frame arrived for this long
const REGISTER_CONCURRENCY = 16;
const PASSWORD = 'bench-password-123';

// -- options and small helpers -----------------------------------------------------------------

function parseArgs(argv) {
  const opts = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') usage(null);
    const name = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(name in DEFAULTS)) usage(`unknown option ${argv[i]}`);
    if (typeof DEFAULTS[name] === 'boolean') {
      opts[name] = true;
    } else {
      const value = argv[++i];
      if (value === undefined) usage(`${argv[i - 1]} needs a value`);
      opts[name] = typeof DEFAULTS[name] === 'string' ? value : Number(value);
      if (typeof opts[name] === 'number' && !(opts[name] >= 0)) usage(`${argv[i - 1]} must be a number >= 0`);
    }
  }
  if (!['fanout', 'rooms', 'connections'].includes(opts.scenario)) usage(`unknown scenario ${opts.scenario}`);
  if (opts.secret.length < 32) usage('--secret (or CHATD_JWT_SECRET) of at least 32 bytes is required');
  const url = new URL(opts.url);
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(url.hostname)) usage('--url must be http://127.0.0.1:<port>');
  opts.httpUrl = `http://127.0.0.1:${url.port || 80}`;
  opts.wsUrl = `ws://127.0.0.1:${url.port || 80}/ws`;
  if (opts.rate === null) opts.rate = DEFAULT_RATE[opts.scenario] || 0;
  // A KeyObject: with a string secret jsonwebtoken first tries to parse it as a PEM key, every time.
  opts.key = crypto.createSecretKey(Buffer.from(opts.secret));
  return opts;
}

function usage(problem) {
  const shown = { ...DEFAULTS, secret: '$CHATD_JWT_SECRET', rate: 'fanout 20, rooms 1000 msgs/s' }; // never print a secret
  const lines = Object.entries(shown).map(([name, value]) => `  --${name}${typeof value === 'boolean' ? '' : ` (default ${value})`}`);
  const text = `usage: node load.js --url http://127.0.0.1:<port> --secret <jwt secret> [options]\n${lines.join('\n')}\n`;
  process.stderr.write(problem ? `load.js: ${problem}\n${text}` : text);
  process.exit(problem ? 2 : 0);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (text) => process.stderr.write(`[load] ${text}\n`);
const mark = (name) => process.stderr.write(`@@mark ${name}\n`);
const round = (x, digits = 3) => (x === null ? null : Number(x.toFixed(digits)));

// Nearest-rank percentile of an ascending array; null when empty.
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil((sorted.length * p) / 100) - 1)];
}

function latencySummary(values) {
  const sorted = Float64Array.from(values).sort();
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
    mean: round(sorted.length ? sum / sorted.length : null),
  };
}

// Resolve when `done()` holds (checked every `everyMs`) or after `limitMs`; answers whether it held.
async function waitFor(done, limitMs, everyMs = 50) {
  const end = performance.now() + limitMs;
  while (!done()) {
    if (performance.now() >= end) return false;
    await sleep(everyMs);
  }
  return true;
}

// Run `task` over `items` with at most `limit` in flight; results in order.
async function pooled(items, limit, task) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// CPU of this process between two process.cpuUsage() readings.
function cpuSince(start, wallMs) {
  const used = process.cpuUsage(start);
  const seconds = (used.user + used.system) / 1e6;
  return { cpu_s: round(seconds), user_s: round(used.user / 1e6), system_s: round(used.system / 1e6), utilization: round(seconds / (wallMs / 1000)) };
}

// -- identities: users (registered over REST or made up) and the tokens we mint -----------------

function postJson(opts, path, body, agent) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(`${opts.httpUrl}${path}`, {
      method: 'POST', agent, timeout: 30000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function makeUsers(opts, count, tag) {
  const names = Array.from({ length: count }, (_, i) => `b${tag}_${i}`);
  if (!opts.register) {
    // The Node peer takes any id; chatd needs real ones (--register).
    return names.map((username) => ({ id: crypto.randomBytes(12).toString('hex'), username }));
  }
  const started = performance.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: REGISTER_CONCURRENCY });
  try {
    const users = await pooled(names, REGISTER_CONCURRENCY, async (username) => {
      const body = { username, email: `${username}@bench.example`, password: PASSWORD };
      let res = await postJson(opts, '/api/auth/register', body, agent);
      // A server may share its password hashing fairly between addresses (chatd: a few hashes at
      // once per address, 429 beyond): wait a moment and try again, a bounded number of times.
      for (let tries = 0; res.status === 429 && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        res = await postJson(opts, '/api/auth/register', body, agent);
      }
      if (res.status !== 201) throw new Error(`register ${username}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      return { id: JSON.parse(res.text).user.id, username };
    });
    log(`registered ${count} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return users;
  } finally {
    agent.destroy();
  }
}

function mintToken(opts, user) {
  const now = Date.now() / 1000;
  const claims = {
    sub: user.id, username: user.username, role: 'user',
    iat: now, exp: Math.floor(now) + opts['token-ttl'], jti: crypto.randomBytes(16).toString('base64url'),
  };
  return jwt.sign(claims, opts.key, { algorithm: 'HS256' });
}

// -- measurement of one phase -------------------------------------------------------------------

// Counts for one measured phase ("step"). Frames of messages sent in another step are "stray".
class Meter {
  constructor(step) {
    this.step = step;
    this.sent = 0;
    this.acks = 0;
    this.deliveries = 0;
    this.stray = 0;
    this.gaps = 0; // seq numbers a socket skipped
    this.outOfOrder = 0; // a seq at or below one already seen on that socket
    this.latencies = [];
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

function messageText(step, size) {
  const head = `t=${performance.now().toFixed(3)} s=${step} `;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

// The send time and step stamped by messageText, or null for a text we did not write.
function parseStamp(text) {
  if (typeof text !== 'string' || !text.startsWith('t=')) return null;
  const a = text.indexOf(' ');
  const b = text.indexOf(' ', a + 1);
  const sentAt = Number(text.slice(2, a));
  const step = Number(text.slice(a + 3, b));
  return Number.isFinite(sentAt) && Number.isInteger(step) ? { sentAt, step } : null;
}

// -- one client socket --------------------------------------------------------------------------

class Client {
  constructor(opts, user) {
    this.opts = opts;
    this.user = user;
    this.ws = null;
    this.lastSeq = new Map(); // room -> highest seq seen, to check order and gaps
    this.joinWaiters = new Map(); // room -> resolve
    this.sentCount = 0;
    this.closed = false;
  }

  // Resolves with the handshake time in ms (new WebSocket -> `hello`), or rejects.
  connect() {
    const url = `${this.opts.wsUrl}?token=${encodeURIComponent(mintToken(this.opts, this.user))}`;
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
    if (!this.closed) {
      this.closed = true;
      run.unexpectedCloses++;
      run.meter.closes++;
      if (run.unexpectedCloses <= 5) log(`socket of ${this.user.username} closed by the server (${code})`);
      fail(new Error(`closed ${code}`)); // a no-op once connected
    }
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
    const text = messageText(step, this.opts['text-size']);
    run.pendingAcks.set(clientId, performance.now());
    this.ws.send(JSON.stringify({ type: 'message', room, text, client_id: clientId }));
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close(1000);
  }
}

// -- setup shared by the scenarios --------------------------------------------------------------

// Open sockets for `users` in waves of `wave` at once; answers the connected clients, the
// handshake times and the failures.
async function connectAll(opts, users) {
  const clients = [];
  const handshakes = [];
  const failures = {};
  for (let i = 0; i < users.length; i += opts.wave) {
    const wave = users.slice(i, i + opts.wave).map((user) => new Client(opts, user));
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

async function setupRooms(opts, tag, roomCount, perRoom) {
  const users = await makeUsers(opts, roomCount * perRoom, tag);
  const { clients, failures } = await connectAll(opts, users);
  if (clients.length !== users.length) throw new Error(`only ${clients.length}/${users.length} sockets opened: ${JSON.stringify(failures)}`);
  const rooms = Array.from({ length: roomCount }, (_, i) => `r${tag}-${i}`);
  // Socket k is in room k % roomCount, so a round-robin over sockets also cycles the rooms.
  const pairs = clients.map((client, k) => [client, rooms[k % roomCount]]);
  await joinAll(opts, pairs);
  return pairs;
}

// -- the measured phase: paced sends, then a drain --------------------------------------------

// Send `rate` msgs/s for `seconds`, round-robin over `senders` ([client, room] pairs). A timer
// fires every TICK_MS and sends however many messages are due by then, so timer jitter does
// not change the average rate.
function pacedSend(senders, rate, seconds, step) {
  const total = Math.round(rate * seconds);
  const started = performance.now();
  let next = 0;
  return new Promise((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.ceil((rate * (performance.now() - started)) / 1000));
      for (; next < due; next++) {
        const [client, room] = senders[next % senders.length];
        if (!client.closed) client.sendMessage(room, step);
        run.meter.sent++;
      }
      if (next >= total) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, TICK_MS);
    tick();
  });
}

// One measured phase: `roomSize` sockets receive each message. Answers the phase's figures.
async function measurePhase(opts, senders, roomSize, rate, seconds, step, markName) {
  const meter = new Meter(step);
  run.meter = meter;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  mark(`${markName}-start`);
  await pacedSend(senders, rate, seconds, step);
  const expected = () => meter.sent * roomSize;
  await waitFor(() => meter.deliveries >= expected() && meter.acks >= meter.sent, opts.drain * 1000);
  mark(`${markName}-end`);
  const wallMs = performance.now() - started;
  const generator = cpuSince(cpuStart, wallMs);
  run.meter = new Meter(-1);
  return {
    rate, duration_s: seconds, sent: meter.sent, acks: meter.acks,
    expected_deliveries: expected(), deliveries: meter.deliveries,
    deliveries_per_s: round(meter.deliveries / seconds, 1), // sent = rate * seconds exactly
    loss: Math.max(0, expected() - meter.deliveries),
    latency_ms: latencySummary(meter.latencies),
    ack_latency_ms: latencySummary(meter.ackLatencies),
    gaps: meter.gaps, out_of_order: meter.outOfOrder, stray: meter.stray,
    error_frames: meter.errors, closed_by_server: meter.closes,
    generator_cpu: generator,
    generator_cpu_bound: generator.utilization > 0.9,
  };
}

function describePhase(p) {
  const l = p.latency_ms;
  return `${p.rate} msgs/s: ${p.deliveries_per_s} deliveries/s, p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms, ` +
    `loss ${p.loss}, acks ${p.acks}/${p.sent}, generator CPU ${Math.round(p.generator_cpu.utilization * 100)}%`;
}

// -- scenarios ----------------------------------------------------------------------------------

async function fanout(opts, tag) {
  const sockets = opts.receivers + opts.senders;
  const pairs = await setupRooms(opts, tag, 1, sockets);
  // The first `senders` sockets send; everyone (senders included) receives every message.
  const senders = pairs.slice(0, opts.senders);
  const result = { receivers: opts.receivers, senders: opts.senders, sockets };
  try {
    if (!opts['find-max']) {
      Object.assign(result, await measurePhase(opts, senders, sockets, opts.rate, opts.duration, 0, 'measure'));
      log(describePhase(result));
      return result;
    }
    result.steps = [];
    result.p99_target_ms = opts['p99-target'];
    result.max_rate = null;
    result.max_deliveries_per_s = null;
    const rates = FIND_MAX_RATES.filter((r) => r <= opts['max-rate']);
    for (let step = 0; step < rates.length; step++) {
      const phase = await measurePhase(opts, senders, sockets, rates[step], opts['step-duration'], step, `step-${rates[step]}`);
      phase.passed = phase.loss === 0 && phase.latency_ms.p99 !== null && phase.latency_ms.p99 <= opts['p99-target'];
      result.steps.push(phase);
      log(`step ${describePhase(phase)} -> ${phase.passed ? 'pass' : 'FAIL'}`);
      if (!phase.passed) break;
      result.max_rate = phase.rate;
      result.max_deliveries_per_s = phase.deliveries_per_s;
      await sleep(1000); // let the server's buffers empty before the next step
    }
    return result;
  } finally {
    await closeAll(pairs.map(([client]) => client));
  }
}

async function rooms(opts, tag) {
  const pairs = await setupRooms(opts, tag, opts.rooms, opts.members);
  try {
    const phase = await measurePhase(opts, pairs, opts.members, opts.rate, opts.duration, 0, 'measure');
    log(describePhase(phase));
    return { rooms: opts.rooms, members: opts.members, sockets: pairs.length, ...phase };
  } finally {
    await closeAll(pairs.map(([client]) => client));
  }
}

async function connections(opts, tag) {
  const users = await makeUsers(opts, opts.connections, tag);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  mark('connect-start');
  const { clients, handshakes, failures } = await connectAll(opts, users);
  const connectMs = performance.now() - started;
  mark('connect-end');
  const generator = cpuSince(cpuStart, connectMs);
  log(`${clients.length}/${users.length} sockets open in ${(connectMs / 1000).toFixed(1)} s; idle for ${opts.settle} s`);
  mark('idle-start');
  await sleep(opts.settle * 1000);
  const stillOpen = clients.filter((c) => !c.closed).length;
  mark('idle-end');
  await closeAll(clients);
  const result = {
    connections: users.length, wave: opts.wave, opened: clients.length,
    failures: Object.values(failures).reduce((a, b) => a + b, 0), failure_reasons: failures,
    connect_s: round(connectMs / 1000), handshakes_per_s: round(clients.length / (connectMs / 1000), 1),
    handshake_ms: latencySummary(handshakes), still_open_after_settle: stillOpen, settle_s: opts.settle,
    generator_cpu: generator,
  };
  log(`${result.handshakes_per_s} handshakes/s, p50 ${result.handshake_ms.p50} ms, p99 ${result.handshake_ms.p99} ms, ` +
    `${result.failures} failures, ${stillOpen} still open after ${opts.settle} s`);
  return result;
}

// -- main ---------------------------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Bounded: whatever happens, the process ends after --time-limit seconds.
  setTimeout(() => {
    log(`time limit of ${opts['time-limit']} s reached; giving up`);
    process.exit(3);
  }, opts['time-limit'] * 1000).unref();
  const tag = crypto.randomBytes(3).toString('hex'); // unique names, so reruns against one server do not collide
  const scenario = { fanout, rooms, connections }[opts.scenario];
  const started = performance.now();
  const result = await scenario(opts, tag);
  const summary = {
    scenario: opts['find-max'] && opts.scenario === 'fanout' ? 'fanout-find-max' : opts.scenario,
    target: opts.httpUrl, registered_users: opts.register, text_size: opts['text-size'],
    ...result,
    unexpected_closes: run.unexpectedCloses,
    generator_total_cpu_s: round((process.cpuUsage().user + process.cpuUsage().system) / 1e6),
    wall_s: round((performance.now() - started) / 1000),
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    log(`failed: ${err.stack || err}`);
    process.exit(1);
  },
);
