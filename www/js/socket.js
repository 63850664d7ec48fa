// The chat WebSocket: connects with the current token, reports its state, paces what it sends under the
// server's rate limit, and reconnects after a drop. Reconnecting waits a random time (full jitter, so a
// restarted server is not hit by every page at the same instant) whose ceiling doubles up to 5 s, and retries
// at once when the browser says it is back online, when the tab becomes visible, or when asked ("Retry now").

import { Pacer } from './pacer.js';

const BACKOFF_START_MS = 500;
export const BACKOFF_MAX_MS = 5000;
const OPEN_TIMEOUT_MS = 10000; // a handshake that hangs (a half-dead network) is abandoned and retried
export const CLOSE_REVOKED = 4001;
export const CLOSE_BANNED = 4003;

export class ChatSocket {
  constructor({ getToken, onFrame, onState, onClosed }) {
    this.getToken = getToken;
    this.onFrame = onFrame;     // (frame) for every frame received
    this.onState = onState;     // ('connecting' | 'online' | 'offline' | 'stopped', delay ms when offline)
    this.onClosed = onClosed;   // (code) before a reconnect is planned; may return false to stop
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.pacer = new Pacer();
    this.queue = [];            // [{frame, key}] waiting for the pacer, in order
    this.drainTimer = null;
    this.retryWhenBack = () => { if (!document.hidden) this.retryNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.retryWhenBack);
    document.addEventListener('visibilitychange', this.retryWhenBack);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.retryWhenBack);
    document.removeEventListener('visibilitychange', this.retryWhenBack);
    clearTimeout(this.timer);
    this.forget();
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.onState('stopped');
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.ready;
  }

  /**
   * Send ``frame`` as soon as the page's budget allows, after what is already waiting. A ``key`` makes it
   * replace a waiting frame with the same key (a newer read receipt or typing state). False when the socket
   * is not connected: the caller sends it again after the next ``hello``.
   */
  send(frame, key) {
    if (!this.open) return false;
    const waiting = key && this.queue.find((entry) => entry.key === key);
    if (waiting) waiting.frame = frame;
    else this.queue.push({ frame, key });
    this.drain();
    return true;
  }

  /** Frames still waiting for the budget. */
  get backlog() {
    return this.queue.length;
  }

  /** Drop waiting frames that ``test`` accepts (messages the outbox will send again in order). */
  discard(test) {
    this.queue = this.queue.filter((entry) => !test(entry.frame));
  }

  /** The server refused a frame for speed: spend nothing for a while. */
  slowDown() {
    this.pacer.drain();
  }

  drain() {
    clearTimeout(this.drainTimer);
    this.drainTimer = null;
    while (this.queue.length && this.open && this.pacer.take()) {
      this.ws.send(JSON.stringify(this.queue.shift().frame));
    }
    if (this.queue.length && this.open) this.drainTimer = setTimeout(() => this.drain(), this.pacer.wait());
  }

  forget() {
    clearTimeout(this.drainTimer);
    this.drainTimer = null;
    this.queue = [];
  }

  /** Reconnect now rather than after the backoff (online again, tab visible, "Retry now"). */
  retryNow() {
    if (this.stopped || this.open) return;
    if (this.ws && this.ws.readyState === WebSocket.CONNECTING && this.attempt === 0) return; // already trying
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.ws) { // an attempt still hanging: abandoned
      const old = this.ws;
      this.ws = null;
      old.close();
    }
    this.ready = false;
    this.forget();
    this.onState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.getToken())}`);
    this.ws = ws;
    this.timer = setTimeout(() => { if (this.ws === ws && !this.ready) ws.close(); }, OPEN_TIMEOUT_MS);
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === 'hello') {
        clearTimeout(this.timer);
        this.ready = true;
        this.attempt = 0;
        this.pacer.reset();
        this.onState('online');
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // an older socket
      this.ws = null;
      this.ready = false;
      this.forget();
      if (this.stopped) return;
      if (this.onClosed(event.code) === false) {
        this.stopped = true;
        this.onState('stopped');
        return;
      }
      this.reconnectLater();
    };
  }

  reconnectLater() {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    const delay = Math.round(Math.random() * ceiling);
    this.attempt += 1;
    this.onState('offline', delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
