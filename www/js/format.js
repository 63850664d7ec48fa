// Dates, times and sizes as people read them. No DOM here.

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export const dayOf = (iso) => dayFormat.format(new Date(iso));
export const timeOf = (iso) => timeFormat.format(new Date(iso));

/** A size as people read it, in the server's units: 26214400 → "25 MB", 1536 → "1.5 KB", 12 → "12 B". */
export function fileSize(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  const shown = size >= 10 ? size.toFixed(0) : size.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${units[unit]}`;
}

/** A message for people with any raw byte count ("larger than 26279936 bytes") as a size ("25 MB"). */
export const humanSizes = (text) => String(text).replace(/\b(\d{4,}) bytes\b/g, (_, digits) => fileSize(Number(digits)));

/** "3 min ago", "yesterday", a date: when a room last saw a message. */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'no messages yet';
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 60) return 'active just now';
  if (seconds < 3600) return `active ${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `active ${Math.floor(seconds / 3600)} h ago`;
  if (seconds < 2 * 86400) return 'active yesterday';
  return `active ${dayOf(iso)}`;
}
