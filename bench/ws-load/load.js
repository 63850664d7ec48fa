'use strict';
// WebSocket load generator for chatd (SPEC.md, "WebSocket") and its Node peers.
//
//   node load.js --url http://127.0.0.1:8090 --secret <jwt secret> --scenario fanout
//   node load.js ... --scenario fanout --find-max
//   node load.js ... --scenario rooms
//   node load.js ... --scenario connections --connections 5000 --wave 100
//   node load.js --url http://127.0.0.1:8090,http://127.0.0.1:8091 ... --register --scenario revoke
//   add --register against chatd: users are registered over REST so each token's `sub` is real.
//
// --url takes several addresses, comma-separated (the nodes of one chatd cluster): sockets are
// spread over them in turn, the members of every room over all of them, and latencies are also
// reported for the deliveries that crossed nodes. Users are registered on the first address.
//
// Everything runs in this one process (many sockets, paced by timers). Latency is measured on
// the same clock that stamped the message: the text of every message starts with
// "t=<performance.now() ms> s=<step> n=<sender's node> ", and each receiving socket subtracts
// that from the time its frame arrived. The JSON summary goes to stdout, progress and one human
// line to stderr.
//
// Lines "@@mark <name>" on stderr tell an orchestrator (bench/ws_bench.py) when a measured
// phase starts and ends, so it can sample the server's CPU and memory at those instants.

const crypto = require('crypto');
const { performance } = require('perf_hooks');
const { log, round } = require('./lib');
const { run } = require('./client');
const { fanout, rooms, connections } = require('./scenarios');
const { revoke } = require('./revoke');

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
  'mention-pct': 0, // % of messages that @mention another member of the room
  'reply-pct': 0, // % of messages that reply in a thread (to the first message the sender saw in the room)
  revocations: 200, // revoke: sockets opened, then logged out one by one
  'revoke-rate': 20, // revoke: logouts/s
  'revoke-wait': 10, // revoke: s to wait for the last sockets to close
  'token-ttl': 3600,
  'time-limit': 900, // s; the whole run is abandoned after this
};
const DEFAULT_RATE = { fanout: 20, rooms: 1000 };
const SCENARIOS = { fanout, rooms, connections, revoke };

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
  if (!(opts.scenario in SCENARIOS)) usage(`unknown scenario ${opts.scenario}`);
  if (opts.secret.length < 32) usage('--secret (or CHATD_JWT_SECRET) of at least 32 bytes is required');
  if (!(opts['revoke-rate'] > 0)) usage('--revoke-rate must be above 0');
  opts.urls = opts.url.split(',').map((text) => {
    const url = new URL(text.trim());
    if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(url.hostname)) usage('--url must be http://127.0.0.1:<port>[,...]');
    return { httpUrl: `http://127.0.0.1:${url.port || 80}`, wsUrl: `ws://127.0.0.1:${url.port || 80}/ws` };
  });
  opts.httpUrl = opts.urls[0].httpUrl; // registrations go here
  if (opts.rate === null) opts.rate = DEFAULT_RATE[opts.scenario] || 0;
  // A KeyObject: with a string secret jsonwebtoken first tries to parse it as a PEM key, every time.
  opts.key = crypto.createSecretKey(Buffer.from(opts.secret));
  return opts;
}

function usage(problem) {
  const shown = { ...DEFAULTS, secret: '$CHATD_JWT_SECRET', rate: 'fanout 20, rooms 1000 msgs/s' }; // never print a secret
  const lines = Object.entries(shown).map(([name, value]) => `  --${name}${typeof value === 'boolean' ? '' : ` (default ${value})`}`);
  const text = `usage: node load.js --url http://127.0.0.1:<port>[,http://127.0.0.1:<port>...] --secret <jwt secret> [options]\n` +
    `  --scenario: ${Object.keys(SCENARIOS).join(', ')}\n${lines.join('\n')}\n`;
  process.stderr.write(problem ? `load.js: ${problem}\n${text}` : text);
  process.exit(problem ? 2 : 0);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Bounded: whatever happens, the process ends after --time-limit seconds.
  setTimeout(() => {
    log(`time limit of ${opts['time-limit']} s reached; giving up`);
    process.exit(3);
  }, opts['time-limit'] * 1000).unref();
  const tag = crypto.randomBytes(3).toString('hex'); // unique names, so reruns against one server do not collide
  const started = performance.now();
  const result = await SCENARIOS[opts.scenario](opts, tag);
  const summary = {
    scenario: opts['find-max'] && opts.scenario === 'fanout' ? 'fanout-find-max' : opts.scenario,
    target: opts.httpUrl, targets: opts.urls.map((u) => u.httpUrl),
    registered_users: opts.register, text_size: opts['text-size'], mention_pct: opts['mention-pct'], reply_pct: opts['reply-pct'],
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
