// The client's state and the rules that keep it consistent: messages de-duplicated by
// (object, seq) and by id, per-object cursors (the highest seq held without a gap), unread
// counts, recalls, typing. Views subscribe to topics and re-render what changed.

import * as api from './api.js';
import { changeBy } from './message-events.js';

export const state = {
  me: null, // the signed-in user's profile
  connection: 'offline', // offline | connecting | online | reconnecting
  profiles: new Map(), // user id -> profile
  friends: new Map(), // user id -> { user, online }
  requests: { incoming: [], outgoing: [] },
  groups: new Map(), // group id -> group
  groupOnline: new Map(), // group id -> members online
  conversations: new Map(), // 'user:<id>' | 'group:<id>' -> summary
  chats: new Map(), // conversation -> { messages: Map id -> msg, pending: Map cid -> msg, ... }
  typing: new Map(), // conversation -> { from, until }
  mutes: new Map(), // muted conversation -> until (ms), or 0 for until unmuted
  open: null, // the conversation shown, if any
};

// (object, seq) pairs held, recalled message ids, and per-object cursors.
const held = new Set();
const recalled = new Set();
const cursors = new Map();
// Events about another message (its `ref`): applied to it, never shown, counted or notified.
const EVENT_KINDS = new Set(['edit', 'reaction', 'reaction_removed']);

// --- topics --------------------------------------------------------------------------------

const listeners = new Map();

export function on(topic, listener) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(listener);
}

export function emit(topic, detail) {
  for (const listener of listeners.get(topic) || []) {
    try {
      listener(detail);
    } catch (error) {
      console.error(`natter: a ${topic} listener failed`, error);
    }
  }
}

export function reset(me) {
  state.me = me;
  state.connection = 'offline';
  for (const key of ['profiles', 'friends', 'groups', 'groupOnline', 'conversations', 'chats', 'typing', 'mutes']) {
    state[key].clear();
  }
  state.requests = { incoming: [], outgoing: [] };
  state.open = null;
  held.clear();
  recalled.clear();
  cursors.clear();
  if (me) state.profiles.set(me.id, me);
}

export function setConnection(value) {
  state.connection = value;
  emit('connection', value);
}

export function setMe(me) {
  state.me = me;
  state.profiles.set(me.id, me);
  emit('me', me);
  emit('profiles', me.id);
}

// --- profiles ------------------------------------------------------------------------------

const asked = new Set();

/** The profile of `id` if known; otherwise it is fetched and `profiles` is emitted later. */
export function profile(id) {
  const known = state.profiles.get(id);
  if (known) return known;
  if (id !== '0' && !asked.has(id)) {
    asked.add(id);
    api
      .get(`/api/v1/users/${api.q(id)}`)
      .then((user) => {
        state.profiles.set(id, user);
        emit('profiles', id);
      })
      .catch(() => asked.delete(id));
  }
  return null;
}

/** The profile of `id`, fetched when not known yet (null when it cannot be had). */
export async function loadProfile(id) {
  if (state.profiles.has(id)) return state.profiles.get(id);
  try {
    const user = await api.get(`/api/v1/users/${api.q(id)}`);
    state.profiles.set(id, user);
    emit('profiles', id);
    return user;
  } catch {
    return null;
  }
}

/** A `profile` event: the user's new nickname and avatar, wherever their profile is shown. */
export function applyProfile({ user_id: id, nickname, avatar }) {
  const changes = { nickname, avatar };
  // Profiles and friend entries may share one object: change it in place so both follow.
  const known = state.profiles.get(id);
  if (known) Object.assign(known, changes);
  const friend = state.friends.get(id);
  if (friend && friend.user !== known) Object.assign(friend.user, changes);
  if (state.me && id === state.me.id) setMe({ ...state.me, ...changes });
  emit('profiles', id);
  emit('friends');
}

export function rememberProfiles(users) {
  for (const user of users) state.profiles.set(user.id, user);
  emit('profiles', null);
}

export function userName(id) {
  if (id === '0') return 'natter';
  if (state.me && id === state.me.id) return state.me.nickname || state.me.username;
  const user = profile(id);
  return user ? user.nickname || user.username : 'someone';
}

/** The display name of a conversation (`user:<id>` or `group:<id>`). */
export function conversationName(key) {
  const [kind, id] = split(key);
  if (kind === 'group') return state.groups.get(id)?.name || 'a group';
  return userName(id);
}

export function split(key) {
  const at = key.indexOf(':');
  return [key.slice(0, at), key.slice(at + 1)];
}

// --- conversations and messages ------------------------------------------------------------

/** The conversation a message belongs to: its group, or the other person of an inbox copy. */
export function conversationOf(msg) {
  if (msg.object.startsWith('group:')) return msg.object;
  return state.me && msg.from === state.me.id ? msg.to : `user:${msg.from}`;
}

function summary(key) {
  let conversation = state.conversations.get(key);
  if (!conversation) {
    conversation = { key, unread: 0, read: 0, lastSeq: 0, last: null };
    state.conversations.set(key, conversation);
  }
  return conversation;
}

export function chat(key) {
  let found = state.chats.get(key);
  if (!found) {
    found = { key, messages: new Map(), pending: new Map(), loaded: false, complete: false, loading: false };
    state.chats.set(key, found);
  }
  return found;
}

export function setConversations(list) {
  for (const item of list) {
    const conversation = summary(item.conversation);
    conversation.unread = item.unread;
    conversation.read = Math.max(conversation.read, item.read);
    if (item.last && item.last.seq >= conversation.lastSeq) {
      conversation.lastSeq = item.last.seq;
      conversation.last = item.last;
    }
    peerReached(item.conversation, { delivered: item.peer_delivered, read: item.peer_read });
    if (item.muted) state.mutes.set(item.conversation, item.muted_until || 0);
    else state.mutes.delete(item.conversation);
  }
  emit('mutes');
  emit('conversations');
}

/** The sum of every conversation's unread count. */
export function totalUnread() {
  let total = 0;
  for (const conversation of state.conversations.values()) {
    if (conversation.key.startsWith('group:') && !state.groups.has(split(conversation.key)[1])) continue;
    total += conversation.unread;
  }
  return total;
}

/**
 * Whether the user muted conversation `key` (`user:<id>` or `group:<id>`): a muted one makes no
 * notification and no sound, but its unread count still shows.
 */
export function isMuted(key) {
  if (!state.mutes.has(key)) return false;
  const until = state.mutes.get(key);
  return until === 0 || until > Date.now();
}

/** A mute set or lifted (from the server's answer or a `muted` event); `until` 0 is until unmuted. */
export function setMuted(key, muted, until = 0) {
  if (muted) state.mutes.set(key, until || 0);
  else state.mutes.delete(key);
  emit('mutes', key);
  emit('conversations');
}

/** Whether the person is looking at this conversation now. */
export function isViewing(key) {
  return state.open === key && document.visibilityState === 'visible';
}

/**
 * Takes in a message from the socket (`live`) or from history. Returns false for a repeat.
 * Messages from others that are newer than the conversation's known end count as unread
 * unless the conversation is being viewed.
 */
export function ingest(msg, { live }) {
  const pair = `${msg.object}:${msg.seq}`;
  if (held.has(pair)) return false;
  held.add(pair);
  const key = conversationOf(msg);
  if (msg.kind === 'recall') {
    markRecalled(msg.body);
    return true;
  }
  if (EVENT_KINDS.has(msg.kind)) {
    // History's copies of messages already carry the effect of its events (latest text, reactions).
    if (live) applyEvent(msg);
    return true;
  }
  const conversation = summary(key);
  const target = chat(key);
  const fresh = msg.seq > conversation.lastSeq;
  if (fresh) {
    conversation.lastSeq = msg.seq;
    conversation.last = msg;
  }
  if (target.messages.has(msg.id)) return false; // the same message under another seq
  const message = { ...msg };
  if (recalled.has(msg.id)) message.kind = 'recalled';
  target.messages.set(msg.id, message);
  if (msg.cid && msg.from === state.me?.id) target.pending.delete(msg.cid);
  const fromOther = msg.from !== state.me?.id;
  if (live && fresh && fromOther && !isViewing(key) && msg.seq > conversation.read) {
    conversation.unread += 1;
  }
  // Their message is what they were typing: the indicator would otherwise linger for seconds.
  if (live && state.typing.get(key)?.from === msg.from) {
    state.typing.delete(key);
    emit('typing', key);
  }
  emit('messages', key);
  emit('conversations');
  if (live && fresh && fromOther) emit('arrived', { key, message });
  return true;
}

function markRecalled(id) {
  recalled.add(id);
  for (const target of state.chats.values()) {
    const message = target.messages.get(id);
    if (message) {
      message.kind = 'recalled';
      message.body = '';
      emit('messages', target.key);
    }
  }
  for (const conversation of state.conversations.values()) {
    if (conversation.last?.id === id) conversation.last = { ...conversation.last, kind: 'recalled', body: '' };
  }
  emit('conversations');
}

// --- edits, reactions and receipts ---------------------------------------------------------

/**
 * Applies an `edit`, `reaction` or `reaction_removed` event to the message it names (`ref`), if
 * held; one not loaded yet comes with its effect when its history page is read. Idempotent.
 */
export function applyEvent(event) {
  for (const target of state.chats.values()) {
    const message = target.messages.get(event.ref);
    if (message && changeBy(message, event, state.me?.id)) emit('messages', target.key);
  }
  if (event.kind !== 'edit') return;
  for (const conversation of state.conversations.values()) {
    if (conversation.last?.id === event.ref) conversation.last = { ...conversation.last, body: event.body };
  }
  emit('conversations');
}

/** How far the other person of a one-to-one chat got with one's messages (seqs of one's inbox). */
export function peerReached(key, { delivered = 0, read = 0 }) {
  if (!key.startsWith('user:')) return;
  const conversation = summary(key);
  const before = [conversation.peerDelivered || 0, conversation.peerRead || 0];
  conversation.peerRead = Math.max(before[1], read || 0);
  conversation.peerDelivered = Math.max(before[0], delivered || 0, conversation.peerRead); // read implies delivered
  if (conversation.peerDelivered !== before[0] || conversation.peerRead !== before[1]) emit('receipts', key);
}

/** Messages of a conversation in order, with the ones still being sent at the end. */
export function ordered(key) {
  const target = chat(key);
  const list = [...target.messages.values()].sort((a, b) => a.seq - b.seq);
  return list.concat([...target.pending.values()]);
}

export function oldestSeq(key) {
  let oldest = null;
  for (const message of chat(key).messages.values()) {
    if (oldest === null || message.seq < oldest) oldest = message.seq;
  }
  return oldest;
}

export function newestSeq(key) {
  let newest = 0;
  for (const message of chat(key).messages.values()) newest = Math.max(newest, message.seq);
  return newest;
}

// Sending: a pending copy is shown at once and replaced by the real message.

export function addPending(key, frame, extra = {}) {
  chat(key).pending.set(frame.cid, {
    ...extra,
    id: `pending:${frame.cid}`,
    cid: frame.cid,
    from: state.me.id,
    to: frame.to,
    kind: frame.kind,
    body: frame.body,
    ts: Date.now(),
    pending: true,
  });
  emit('messages', key);
}

/** The `sent` answer: the message is durable; show it as such. */
export function sent(frame, key) {
  const target = chat(key);
  const pending = target.pending.get(frame.cid);
  if (!pending) return;
  target.pending.delete(frame.cid);
  ingest({ ...pending, id: frame.id, object: frame.object, seq: frame.seq, ts: frame.ts, pending: false }, { live: true });
}

export function failed(key, cid, message, code) {
  const pending = chat(key).pending.get(cid);
  if (!pending) return;
  // The server's detail for `muted` is written for developers (a time in ms): say it plainly.
  pending.failed = code === 'muted' ? 'an owner or admin of this group has muted you here for now.' : message;
  emit('messages', key);
}

export function dropPending(key, cid) {
  chat(key).pending.delete(cid);
  emit('messages', key);
}

// --- cursors -------------------------------------------------------------------------------

/** The cursors to sync from: every object this tab has followed. */
export function syncCursors() {
  return Object.fromEntries(cursors);
}

export function cursor(object) {
  return cursors.get(object);
}

/** After a `synced`: everything up to these positions has been sent on the connection. */
/** Forgets every cursor (they were refused as from another history); the next sync starts from the server's. */
export function forgetCursors() {
  cursors.clear();
}

export function synced(positions) {
  for (const [object, seq] of Object.entries(positions || {})) {
    cursors.set(object, Math.max(cursors.get(object) || 0, seq));
    advance(object);
  }
}

/**
 * Moves an object's cursor over every seq held without a gap. Returns false when `seq` leaves a
 * gap behind it (the caller asks for a sync from the cursor).
 */
export function received(object, seq) {
  if (!cursors.has(object)) {
    // An object first seen live (a group joined on this connection) starts here.
    cursors.set(object, seq);
    return true;
  }
  advance(object);
  return cursors.get(object) >= seq;
}

function advance(object) {
  let at = cursors.get(object);
  while (held.has(`${object}:${at + 1}`)) at += 1;
  cursors.set(object, at);
}

// --- read cursors and unread counts --------------------------------------------------------

/** Marks the open conversation read up to what it holds; answers the seq to tell the server. */
export function readUpTo(key) {
  const conversation = summary(key);
  const newest = newestSeq(key);
  const changed = conversation.unread !== 0;
  conversation.unread = 0;
  if (changed) emit('conversations');
  if (newest > conversation.read) {
    conversation.read = newest;
    return newest;
  }
  return null;
}

/** A `read` event from another device (or this one). Returns true when a recount is needed. */
export function readEvent(key, seq) {
  const conversation = summary(key);
  conversation.read = Math.max(conversation.read, seq);
  if (seq >= conversation.lastSeq) {
    conversation.unread = 0;
    emit('conversations');
    return false;
  }
  return true;
}

// --- leaving a group ------------------------------------------------------------------------

/**
 * Forgets a group the user is no longer in: its summary, messages, counts and cursor, so that
 * joining it again starts afresh from the server. Answers the group as it was, or null.
 */
export function forgetGroup(id) {
  const group = state.groups.get(id) || null;
  const key = `group:${id}`;
  state.groups.delete(id);
  state.groupOnline.delete(id);
  state.conversations.delete(key);
  state.chats.delete(key);
  state.typing.delete(key);
  cursors.delete(key);
  for (const pair of held) if (pair.startsWith(`${key}:`)) held.delete(pair);
  emit('groups');
  emit('conversations');
  return group;
}

// --- typing --------------------------------------------------------------------------------

export function typing(key, from) {
  const until = Date.now() + 3000;
  state.typing.set(key, { from, until });
  emit('typing', key);
  setTimeout(() => {
    if (state.typing.get(key)?.until <= Date.now()) {
      state.typing.delete(key);
      emit('typing', key);
    }
  }, 3100);
}

export function typingIn(key) {
  const entry = state.typing.get(key);
  return entry && entry.until > Date.now() ? entry : null;
}
