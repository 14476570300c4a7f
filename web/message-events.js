// What an edit or a reaction does to the message it is about. Pure functions on plain message
// objects, so applying the same event twice (shown at once, then its event arrives) is harmless.

/** Changes `message` by an `edit`, `reaction` or `reaction_removed` event; answers whether it changed. */
export function changeBy(message, event, me) {
  if (event.kind === 'edit') {
    const at = event.edited_at || event.ts || Date.now();
    // An older edit (from a history page read after a newer one) must not undo the newer text.
    if (message.kind !== 'text' || at <= (message.edited_at || 0)) return false;
    message.body = event.body;
    message.edited_at = at;
    return true;
  }
  return setReaction(message, event.from, event.body, event.kind === 'reaction', me);
}

/** Adds or removes `user`'s `emoji` as a set: twice is once, removing what is not there is nothing. */
function setReaction(message, user, emoji, on, me) {
  const list = message.reactions || [];
  const mine = user === me;
  const entry = list.find((r) => r.emoji === emoji);
  // History lists at most 20 people per emoji; `mine` still says whether one of them is me.
  const has = Boolean(entry) && (entry.users.includes(user) || (mine && entry.mine));
  if (has === on) return false;
  // A new array each time: chat.js redraws a message when its reactions' signature changes.
  if (on) {
    const added = entry
      ? { ...entry, count: entry.count + 1, users: [...entry.users, user], mine: entry.mine || mine }
      : { emoji, count: 1, users: [user], mine };
    message.reactions = entry ? list.map((r) => (r === entry ? added : r)) : [...list, added];
  } else {
    const left = { ...entry, count: entry.count - 1, users: entry.users.filter((u) => u !== user), mine: mine ? false : entry.mine };
    message.reactions = list.map((r) => (r === entry ? left : r)).filter((r) => r.count > 0);
  }
  return true;
}
