// The page's own budget of frames per socket, kept below the server's --socket-rate (20 frames/s, burst 50,
// docs/BEHAVIOUR.md): a frame over the server's budget is dropped, so the page spends less than it may and a
// message is never refused for speed. The margin covers the pongs the browser sends by itself and frames
// that leave together after a network stall.

export const PAGE_RATE_PER_S = 16;
export const PAGE_BURST = 40;

export class Pacer {
  /**
   * A token bucket: ``take()`` spends a token if there is one. ``now`` is a clock in milliseconds, so tests
   * of the page's rules could drive it by hand.
   */
  constructor({ rate = PAGE_RATE_PER_S, burst = PAGE_BURST, now = () => performance.now() } = {}) {
    this.rate = rate;
    this.burst = burst;
    this.now = now;
    this.reset();
  }

  /** A fresh connection: the server's bucket starts full, so does ours. */
  reset() {
    this.tokens = this.burst;
    this.stamp = this.now();
  }

  /** The server said we went too fast after all: spend nothing until it has refilled a little. */
  drain() {
    this.refill();
    this.tokens = Math.min(this.tokens, 0);
  }

  refill() {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.stamp) / 1000) * this.rate);
    this.stamp = now;
  }

  /** Spend one token: true if there was one. */
  take() {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there (0: now). */
  wait() {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}
