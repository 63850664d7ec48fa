// Desktop notifications: offered by an "Enable notifications" link; once allowed, a message arriving while
// the tab is hidden shows one notification per room (a newer one replaces the older).

import { $ } from './view.js';

export class Notifier {
  constructor() {
    $('notify').addEventListener('click', async () => {
      await Notification.requestPermission();
      this.offer();
    });
  }

  /** Show the link while the user has neither allowed nor refused notifications. */
  offer() {
    $('notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
  }

  /** A `mention` frame: the user was mentioned in ``label`` (a room's name on screen); shown unless the user is
   *  reading that very room in a visible tab. */
  mention(label, frame, reading) {
    if (reading || !('Notification' in window) || Notification.permission !== 'granted') return;
    new Notification(`${frame.user} mentioned you in ${label}`, { body: frame.text, tag: `chatd-mention-${frame.room}` });
  }

  /** ``message`` arrived in ``room`` from someone else: a notification if the tab is hidden. */
  message(room, message) {
    if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
    new Notification(`${message.user} in ${room}`, { body: message.file ? message.file.name : message.text, tag: `chatd-${room}` });
  }
}
