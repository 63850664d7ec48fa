// The chat WebSocket: connects with the current token, reports its state, and reconnects after a drop with
// exponential backoff and full jitter (so a restarted server is not hit by every client at the same instant).

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 30000;
export const CLOSE_REVOKED = 4001;
export const CLOSE_BANNED = 4003;

export class ChatSocket {
  constructor({ getToken, onFrame, onState, onClosed }) {
    this.getToken = getToken;
    this.onFrame = onFrame;     // (frame) for every frame received
    this.onState = onState;     // ('connecting' | 'online' | 'offline' | 'stopped', detail)
    this.onClosed = onClosed;   // (code) before a reconnect is planned; may return false to stop
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.onState('stopped');
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.ready;
  }

  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    if (this.stopped) return;
    this.ready = false;
    this.onState('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.getToken())}`);
    this.ws = ws;
    ws.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === 'hello') {
        this.ready = true;
        this.attempt = 0;
        this.onState('online');
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // an older socket
      this.ws = null;
      this.ready = false;
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
