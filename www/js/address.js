// The open room in the page's address (#team), so a reload, a bookmark or a shared link opens it again, and
// typing a room's name there opens (joining) it as the join box does. No room open: no fragment.

/** The room named in the address, or null. */
export function roomInAddress() {
  try {
    return decodeURIComponent(location.hash.slice(1)) || null;
  } catch (e) {
    return null; // a broken %-escape names nothing
  }
}

/** Show ``name`` (or nothing) in the address, without a new history entry. */
export function showInAddress(name) {
  history.replaceState(null, '', name ? `#${encodeURIComponent(name)}` : `${location.pathname}${location.search}`);
}

/** ``onRoom(name)`` when the user changes the address to name a room other than the open one. */
export function watchAddress(current, onRoom) {
  window.addEventListener('hashchange', () => {
    const name = roomInAddress();
    if (name && name !== current()) onRoom(name);
  });
}
