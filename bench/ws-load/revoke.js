'use strict';
// The revocation scenario: how long after a logout does the socket opened with that token close?
//
// N registered users each open one socket on the last --url (node B), then each token is logged
// out (POST /api/auth/logout) through the first --url (node A), at --revoke-rate logouts/s, open
// loop. The latency of one revocation is the socket's close (4001) on B minus the moment the
// logout request was sent. With one --url, sockets and logouts go to the same address (with
// --workers, each lands on whichever worker the kernel picks).

const http = require('http');
const { performance } = require('perf_hooks');
const { sleep, log, mark, round, latencySummary, waitFor, cpuSince, postJson, makeUsers } = require('./lib');
const { run, connectAll, closeAll } = require('./client');

const REVOKED = 4001; // SPEC.md: token revoked or expired

async function revoke(opts, tag) {
  const users = await makeUsers(opts, opts.revocations, tag);
  const socketNode = opts.urls.length - 1;
  const logoutUrl = opts.urls[0].httpUrl;
  const { clients, failures } = await connectAll(opts, users, () => socketNode);
  if (clients.length !== users.length) throw new Error(`only ${clients.length}/${users.length} sockets opened: ${JSON.stringify(failures)}`);
  await waitFor(() => performance.now() - run.lastFrameAt > 500, 30000); // presence of the opens dies down
  const latencies = [];
  const httpLatencies = [];
  const statuses = {};
  const closeCodes = {};
  let beforeAnswer = 0; // closes that came before the logout's own answer
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  mark('revoke-start');
  const requests = clients.map(async (client, i) => {
    await sleep(Math.max(0, started + (i * 1000) / opts['revoke-rate'] - performance.now()));
    const sentAt = performance.now();
    let answered = false;
    client.onServerClose = (code, at) => {
      closeCodes[code] = (closeCodes[code] || 0) + 1;
      if (code === REVOKED) latencies.push(at - sentAt);
      if (!answered) beforeAnswer++;
    };
    try {
      const res = await postJson(logoutUrl, '/api/auth/logout', undefined, agent, { Authorization: `Bearer ${client.token}` });
      statuses[res.status] = (statuses[res.status] || 0) + 1;
    } catch (err) {
      statuses[err.message] = (statuses[err.message] || 0) + 1;
    }
    answered = true;
    httpLatencies.push(performance.now() - sentAt);
  });
  await Promise.all(requests);
  await waitFor(() => clients.every((c) => c.closed), opts['revoke-wait'] * 1000);
  mark('revoke-end');
  const wallMs = performance.now() - started;
  const generator = cpuSince(cpuStart, wallMs);
  agent.destroy();
  const stillOpen = clients.filter((c) => !c.closed);
  await closeAll(stillOpen);
  const result = {
    revocations: clients.length, revoke_rate: opts['revoke-rate'],
    socket_url: opts.urls[socketNode].httpUrl, logout_url: logoutUrl,
    logout_status: statuses, close_codes: closeCodes, not_closed: stillOpen.length,
    closed_before_logout_answered: beforeAnswer,
    latency_ms: latencySummary(latencies), logout_http_ms: latencySummary(httpLatencies),
    generator_cpu: generator,
  };
  log(`${clients.length} logouts: ${latencies.length} sockets closed with ${REVOKED}, p50 ${result.latency_ms.p50} ms, ` +
    `p99 ${result.latency_ms.p99} ms, max ${result.latency_ms.max} ms, ${stillOpen.length} still open; ` +
    `logout HTTP p99 ${result.logout_http_ms.p99} ms, statuses ${JSON.stringify(statuses)}`);
  return { ...result, wall_s_phase: round(wallMs / 1000) };
}

module.exports = { revoke };
