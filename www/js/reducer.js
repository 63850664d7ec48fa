// The frame reducer: applies one server frame (PROTOCOL.md) to what the page knows, and says what changed, so
// the page redraws just that. No DOM, no socket, no timers here.

import { Room } from './rooms.js';

export const TYPING_SHOWN_MS = 6000; // a "typing" not repeated within this is over

const PRESENCE_TEXT = { join: 'joined', leave: 'left', online: 'is online', offline: 'went offline' };
const MEMBER_TEXT = { added: 'was added', removed: 'was removed', role: 'is now' };

let noticeIds = 0;

/**
 * Apply ``frame`` to ``state`` ({me, rooms: Map name → Room}). ``context`` has ``myId`` (the user's id),
 * ``now`` (ms) and ``watching(name)`` (the room is open in a visible tab). Answers a list of changes:
 * ``{kind, room?, ...}`` where ``kind`` is one of hello, joined, left, invited, message, ack, members,
 * timeline, thread (the open thread may have changed), mention, elsewhere (a mention in a room not listed),
 * typing, info (the room's record), error.
 */
export function reduce(state, frame, { myId, now, watching }) {
  const room = typeof frame.room === 'string' ? state.rooms.get(frame.room) : undefined;
  switch (frame.type) {
    case 'hello':
      state.me = frame.user;
      return [{ kind: 'hello', user: frame.user }];
    case 'joined': {
      if (!room) return [];
      room.joined = true;
      room.members = new Set(frame.members);
      if (frame.truncated) room.clear();
      for (const message of frame.history || []) room.add(message);
      return [{ kind: 'joined', room, messages: frame.history || [], truncated: Boolean(frame.truncated) },
        { kind: 'members', room }, { kind: 'timeline', room }];
    }
    case 'left':
      if (!room) return [];
      state.rooms.delete(room.name);
      return [{ kind: 'left', room, reason: frame.reason }];
    case 'invited': {
      const name = frame.room && frame.room.name;
      if (!name || state.rooms.has(name)) return [];
      const invited = new Room(name);
      invited.info = frame.room;
      state.rooms.set(name, invited);
      return [{ kind: 'invited', room: invited, by: frame.by }];
    }
    case 'member': {
      if (!room) return [];
      if (room.roster && frame.event === 'removed') room.roster.delete(frame.user);
      else if (room.roster) room.roster.set(frame.user, frame.role);
      if (room.info && frame.event === 'role' && frame.role === 'owner') room.info = { ...room.info, owner: frame.user };
      notice(room, `${frame.user} ${MEMBER_TEXT[frame.event] || frame.event}${frame.event === 'role' ? ` ${frame.role}` : ''}`);
      // Someone added by invitation: the list is read again for whether they are online.
      return [{ kind: 'members', room, reload: frame.event === 'added' }, { kind: 'timeline', room }];
    }
    case 'room': { // its `room` is the Room object, not a name
      const described = frame.room && state.rooms.get(frame.room.name);
      if (!described) return [];
      described.info = frame.room;
      return [{ kind: 'info', room: described }];
    }
    case 'message': {
      if (!room) return [];
      const isNew = room.add(frame);
      const fromOthers = frame.user_id !== myId;
      if (isNew && fromOthers) {
        room.typing.delete(frame.user); // their message is what they were typing
        if (!watching(room.name)) room.unread += 1;
      }
      const changes = [{ kind: 'message', room, message: frame, isNew, fromOthers }, { kind: 'timeline', room }];
      if (frame.reply_to !== undefined) changes.push({ kind: 'thread', room });
      return changes;
    }
    case 'ack':
      return [{ kind: 'ack', room, frame }];
    case 'presence': {
      if (!room) return [];
      if (frame.event === 'join' || frame.event === 'online') room.members.add(frame.user);
      else room.members.delete(frame.user);
      // Joining a public room makes a member; leaving ends it (an owner's hand-over comes as a `member` frame).
      if (room.roster && frame.event === 'join' && !room.roster.has(frame.user)) room.roster.set(frame.user, 'member');
      if (room.roster && frame.event === 'leave') room.roster.delete(frame.user);
      notice(room, `${frame.user} ${PRESENCE_TEXT[frame.event] || frame.event}`);
      return [{ kind: 'members', room }, { kind: 'timeline', room }];
    }
    case 'typing':
      if (!room) return [];
      if (frame.typing) room.typing.set(frame.user, now + TYPING_SHOWN_MS);
      else room.typing.delete(frame.user);
      return [{ kind: 'typing', room }];
    case 'read':
      if (!room) return [];
      room.read(frame.user, frame.seq);
      return [{ kind: 'timeline', room }];
    case 'edited':
      if (!room) return [];
      room.edit(frame.seq, frame.text, frame.edited_at);
      return [{ kind: 'timeline', room }, { kind: 'thread', room }];
    case 'deleted':
      if (!room) return [];
      room.remove(frame.seq);
      return [{ kind: 'timeline', room }, { kind: 'thread', room }];
    case 'reaction':
      if (!room || !room.react(frame.seq, frame.emoji, frame.user, frame.on)) return [];
      return [{ kind: 'timeline', room }, { kind: 'thread', room }];
    case 'thread':
      if (!room || !room.summarize(frame.root, frame.replies, frame.last_reply_at, frame.last_reply_seq)) return [];
      return [{ kind: 'timeline', room }, { kind: 'thread', room }];
    case 'mention':
      if (!room) return [{ kind: 'elsewhere', frame }]; // a public room the user is not in: not joined for it
      if (!watching(room.name)) room.mentions += 1;
      return [{ kind: 'mention', room, frame }];
    case 'error':
      return [{ kind: 'error', frame }];
    default: // pong, refreshed: nothing this page shows
      return [];
  }
}

function notice(room, text) {
  noticeIds += 1;
  room.notices.push({ id: noticeIds, afterSeq: room.lastSeq, text });
}
