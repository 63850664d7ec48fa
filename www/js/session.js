// The signed-in session: token, expiry and user, kept in sessionStorage (a reload keeps it, a closed tab
// does not), and the token refreshed a minute before it expires.

const KEY = 'chatd.session';
const REFRESH_BEFORE_S = 60;
const RETRY_REFRESH_MS = 10000;

export class Session {
  /**
   * ``onRefreshed(token)`` hands a fresh token to the open socket; ``onEnded(reason)`` signs the page out
   * when the server refuses the session (401, or 403 for a ban).
   */
  constructor(api, { onRefreshed, onEnded }) {
    this.api = api;
    this.onRefreshed = onRefreshed;
    this.onEnded = onEnded;
    this.timer = null;
    try {
      this.data = JSON.parse(sessionStorage.getItem(KEY) || 'null'); // {token, expires_at, user}
    } catch (e) {
      this.data = null;
    }
  }

  /** Whether a stored session can still be used. */
  get valid() {
    return Boolean(this.data && Date.parse(this.data.expires_at) > Date.now());
  }

  get token() { return this.data ? this.data.token : null; }
  get user() { return this.data ? this.data.user : null; }

  /** Signed in (or refreshed): keep it and plan the next refresh. */
  save(data) {
    this.data = data;
    sessionStorage.setItem(KEY, JSON.stringify(data));
    this.schedule();
  }

  /** The server's account as of the socket's hello (a rename made elsewhere shows after a reconnect). */
  setUser(user) {
    this.save({ ...this.data, user });
  }

  schedule() {
    clearTimeout(this.timer);
    if (!this.data) return;
    const seconds = (Date.parse(this.data.expires_at) - Date.now()) / 1000 - REFRESH_BEFORE_S;
    this.timer = setTimeout(() => this.refresh(), Math.max(1, seconds) * 1000);
  }

  /** A fresh token through the REST API; true when it worked. */
  async refresh() {
    try {
      const fresh = await this.api.refresh();
      this.save({ ...this.data, token: fresh.token, expires_at: fresh.expires_at });
      this.onRefreshed(fresh.token);
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        this.onEnded(e.status === 403 ? 'Your account is banned.' : 'Your session has ended; log in again.');
      } else {
        this.timer = setTimeout(() => this.refresh(), RETRY_REFRESH_MS); // the server is away: soon again
      }
      return false;
    }
  }

  clear() {
    clearTimeout(this.timer);
    sessionStorage.removeItem(KEY);
    this.data = null;
  }
}
