// What a room's socket frames do not bring: its latest messages when a join's history was cut, older pages
// when the reader scrolls up, and how far the others have read (to rebuild "seen by" after a reload).

export class Loader {
  /**
   * ``myId()`` is the user's id; ``changed(room, parts)`` asks for a redraw of ``parts`` (RoomView.schedule)
   * when ``room`` is open; ``showError(text)`` reports a failure.
   */
  constructor(api, { myId, changed, showError }) {
    this.api = api;
    this.myId = myId;
    this.changed = changed;
    this.showError = showError;
  }

  async latest(room) {
    try {
      const page = await this.api.history(room.name);
      for (const message of page.messages) room.add(message);
      room.hasOlder = page.next_before !== null;
      this.changed(room, { timeline: true, follow: true });
    } catch (e) { this.showError(e.message); }
  }

  /** The page before the oldest loaded; ``fromBottom()`` measures the reader's place, which is kept. */
  async older(room, fromBottom) {
    if (!room.hasOlder || room.loadingOlder || room.oldestSeq === null) return;
    room.loadingOlder = true;
    try {
      const page = await this.api.history(room.name, room.oldestSeq);
      for (const message of page.messages) room.add(message);
      room.hasOlder = page.next_before !== null;
      this.changed(room, { timeline: true, anchor: fromBottom() });
    } catch (e) {
      this.showError(e.message);
    } finally {
      room.loadingOlder = false;
    }
  }

  /** Load pages until message ``seq`` is in the timeline (or the history has no more). */
  async reach(room, seq) {
    if (room.seqs.length === 0) await this.latest(room);
    for (let guard = 0; guard < 1000 && !room.placed.has(seq) && room.hasOlder; guard += 1) {
      if (room.loadingOlder) await new Promise((resolve) => setTimeout(resolve, 50)); // a scroll's page first
      else await this.older(room, () => 0);
    }
  }

  /** The members' read positions (GET /api/rooms/{room}/reads); live `read` frames add to them. */
  async reads(room) {
    try {
      const { reads } = await this.api.reads(room.name);
      for (const read of reads) if (read.user_id !== this.myId()) room.read(read.user, read.seq);
      this.changed(room, { timeline: true });
    } catch (e) { /* "seen by" waits for the next live receipt */ }
  }
}
