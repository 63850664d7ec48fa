'use strict';
// The message and connection scenarios: fanout (one big room, optionally stepped up to find the
// highest rate that keeps p99 under a target), rooms (many small rooms, every member sends) and
// connections (many sockets opened in waves, then idle). Each answers its figures as an object.

const { performance } = require('perf_hooks');
const { sleep, log, mark, round, latencySummary, waitFor, cpuSince, makeUsers } = require('./lib');
const { Meter, run, connectAll, closeAll, setupRooms } = require('./client');

const FIND_MAX_RATES = [20, 40, 80, 120, 160, 200, 300, 400, 500, 600, 800, 1000, 1200, 1600, 2000, 3000, 4000, 5000];
const TICK_MS = 10; // pacing timer period

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

// One measured phase: `roomSize` sockets receive each message. Answers the phase's figures; with
// several nodes also the latency of the deliveries to a socket on another node than the sender's.
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
  const several = opts.urls.length > 1;
  return {
    rate, duration_s: seconds, sent: meter.sent, acks: meter.acks,
    expected_deliveries: expected(), deliveries: meter.deliveries,
    deliveries_per_s: round(meter.deliveries / seconds, 1), // sent = rate * seconds exactly
    loss: Math.max(0, expected() - meter.deliveries),
    latency_ms: latencySummary(meter.latencies),
    cross_node_deliveries: several ? meter.crossDeliveries : null,
    cross_node_latency_ms: several ? latencySummary(meter.crossLatencies) : null,
    ack_latency_ms: latencySummary(meter.ackLatencies),
    gaps: meter.gaps, out_of_order: meter.outOfOrder, stray: meter.stray,
    error_frames: meter.errors, closed_by_server: meter.closes,
    generator_cpu: generator,
    generator_cpu_bound: generator.utilization > 0.9,
  };
}

function describePhase(p) {
  const l = p.latency_ms;
  const cross = p.cross_node_latency_ms ? ` (cross-node p50 ${p.cross_node_latency_ms.p50} ms, p99 ${p.cross_node_latency_ms.p99} ms)` : '';
  return `${p.rate} msgs/s: ${p.deliveries_per_s} deliveries/s, p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms${cross}, ` +
    `loss ${p.loss}, acks ${p.acks}/${p.sent}, generator CPU ${Math.round(p.generator_cpu.utilization * 100)}%`;
}

async function fanout(opts, tag) {
  const sockets = opts.receivers + opts.senders;
  const pairs = await setupRooms(opts, tag, 1, sockets);
  // The first `senders` sockets send (over the nodes in turn); everyone, senders included, receives every message.
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

module.exports = { fanout, rooms, connections };
