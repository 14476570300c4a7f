// The address of what is shown, in the URL's fragment: `#/chat/user:<id>`, `#/chat/group:<id>`,
// `#/profile`, `#/invite/<code>` (an invite link), or `#/` for the lists. A chat then survives a reload, and the browser's back and
// forward buttons move between the screens (the phone layout shows one at a time).

const CHAT = /^#\/chat\/((?:user|group):\d+)$/;
const INVITE = /^#\/invite\/([A-Za-z0-9_-]{1,128})$/; // the `url` of an invite link
let listener = () => {};

/** What the fragment asks for: `{ view: 'chat', key }`, `{ view: 'profile' }`, `{ view: 'invite', code }` or `{ view: 'list' }`. */
export function parse(hash = location.hash) {
  const chat = CHAT.exec(hash);
  if (chat) return { view: 'chat', key: chat[1] };
  if (hash === '#/profile') return { view: 'profile' };
  const invite = INVITE.exec(hash);
  if (invite) return { view: 'invite', code: invite[1] };
  return { view: 'list' };
}

/** The fragment of a conversation's chat. */
export function chatHash(key) {
  return `#/chat/${key}`;
}

/** Calls `fn(route)` whenever the fragment changes (links, back and forward, `go`). */
export function onChange(fn) {
  listener = fn;
  window.addEventListener('hashchange', () => listener(parse()));
}

/**
 * Shows `hash`: a new history entry, or in place of the current one with `replace` (for a chat
 * that went away, which back should not return to). Already there: shown again.
 */
export function go(hash, { replace = false } = {}) {
  if (location.hash === hash || (hash === '#/' && !location.hash)) {
    listener(parse(hash));
  } else {
    // Marked as natter's own entry, so `back` knows it can step back to what came before.
    history[replace ? 'replaceState' : 'pushState']({ natter: true }, '', hash);
    listener(parse(hash));
  }
}

/** Back to the lists: the browser's back when natter opened this screen, else in place. */
export function back() {
  if (history.state?.natter && history.length > 1) history.back();
  else go('#/', { replace: true });
}

/** Forgets the fragment without a history entry (signing out). */
export function clear() {
  history.replaceState(null, '', location.pathname + location.search);
}
