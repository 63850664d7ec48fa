'use strict';
// Small helpers shared by the load generator's modules: logging and marks, percentiles, bounded
// waits, a concurrency pool, this process's CPU, and the identities (users over REST, tokens we mint).

const http = require('http');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const jwt = require('jsonwebtoken');

const REGISTER_CONCURRENCY = 16;
const PASSWORD = 'bench-password-123';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (text) => process.stderr.write(`[load] ${text}\n`);
// "@@mark <name>" on stderr: the orchestrator (bench/ws_bench.py) samples CPU and memory there.
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

// POST a JSON body to `baseUrl` + `path`; resolves with { status, text }. `headers` are added.
function postJson(baseUrl, path, body, agent, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request(`${baseUrl}${path}`, {
      method: 'POST', agent, timeout: 30000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers },
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

// `count` users named b<tag>_<i>: registered over REST on the first URL with --register (chatd
// needs real user ids; with several nodes they share the store), made up otherwise.
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
      let res = await postJson(opts.httpUrl, '/api/auth/register', body, agent);
      // A server may share its password hashing fairly between addresses (chatd: a few hashes at
      // once per address, 429 beyond): wait a moment and try again, a bounded number of times.
      for (let tries = 0; res.status === 429 && tries < 100; tries++) {
        await sleep(100);
        res = await postJson(opts.httpUrl, '/api/auth/register', body, agent);
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

module.exports = {
  sleep, log, mark, round, percentile, latencySummary, waitFor, pooled, cpuSince, postJson, makeUsers, mintToken,
};
