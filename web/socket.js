// The WebSocket: connects with the access token, `sync`s from the cursors the store holds,
// acks what arrived, reconnects with backoff after a drop (or when the browser goes offline),
// and keeps an outbox of sends that are resent under the same cid until answered.

import * as api from './api.js';
import * as store from './store.js';

const PING_EVERY_MS = 15_000;
const SILENCE_LIMIT_MS = 40_000;
const RESEND_AFTER_MS = 8_000;
const MAX_BACKOFF_MS = 15_000;

let wsUrl = null;
let ws = null;
let live = false; // past the first `synced` of this connection
let welcomed = false;
let epoch = null; // the history this tab's messages and cursors belong to (from `welcome`)
let stopped = true;
let attempt = 0;
let failedUpgrades = 0;
let reconnectTimer = null;
let ackTimer = null;
let heartbeat = null;
let lastHeard = 0;
let frameHandler = () => {};
let onResynced = () => {};
const acked = new Map(); // object -> seq acked
const confirmed = new Map(); // object -> the server's stored cursor, from `acked`
const outbox = new Map(); // cid -> { frame, key, at }
let typingSentAt = 0;
let typingTimer = null;
const TYPING_EVERY_MS = 1100; // a little over the server's one a second, measured on arrival

/** Starts the connection. `handler` gets every event frame; `resynced` runs after each sync. */
export function start({ onEvent, onSynced }) {
  frameHandler = onEvent;
  onResynced = onSynced;
  stopped = false;
  attempt = 0;
  connect();
}

export function stop() {
  stopped = true;
  clearTimeout(reconnectTimer);
  clearInterval(heartbeat);
  outbox.clear();
  acked.clear();
  detach();
  store.setConnection('offline');
}

/** For tests and the curious: drops the connection as a network failure would. */
export function drop() {
  if (ws) lost();
}

window.addEventListener('offline', () => {
  if (!stopped && ws) lost();
});
window.addEventListener('online', () => {
  if (!stopped && !ws) {
    attempt = 0;
    clearTimeout(reconnectTimer);
    connect();
  }
});

async function connect() {
  reconnectTimer = null;
  if (stopped || ws) return;
  store.setConnection(attempt === 0 && store.state.connection !== 'reconnecting' ? 'connecting' : 'reconnecting');
  let token;
  try {
    if (!wsUrl) {
      const config = await fetch('/api/v1/client-config').then((r) => r.json());
      wsUrl = config.ws_url.replace('{host}', location.hostname);
    }
    token = await api.accessToken();
  } catch (error) {
    if (error.code === 'invalid_token' || error.code === 'unauthorized' || error.code === 'token_expired') return;
    scheduleReconnect();
    return;
  }
  if (stopped || ws) return;
  welcomed = false;
  live = false;
  const socket = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
  ws = socket;
  socket.onmessage = (event) => {
    if (ws !== socket) return;
    lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(frame);
  };
  socket.onclose = () => {
    if (ws === socket) lost();
  };
  lastHeard = Date.now();
  clearInterval(heartbeat);
  heartbeat = setInterval(tick, 5000);
}

function detach() {
  if (!ws) return;
  const socket = ws;
  ws = null;
  live = false;
  socket.onmessage = null;
  socket.onclose = null;
  try {
    socket.close();
  } catch {
    /* already closed */
  }
}

/** The connection is gone: show it and try again later. */
function lost() {
  const wasWelcomed = welcomed;
  detach();
  clearInterval(heartbeat);
  if (stopped) return;
  store.setConnection('reconnecting');
  if (!wasWelcomed) {
    failedUpgrades += 1;
    // A refused upgrade shows no status to a browser: check the token over REST, which
    // refreshes it, or signs out when the session is over.
    if (failedUpgrades >= 2) api.get('/api/v1/me').catch(() => {});
  }
  scheduleReconnect();
}

function scheduleReconnect() {
  if (stopped || reconnectTimer) return;
  const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  attempt += 1;
  if (navigator.onLine === false) {
    // Wait for the `online` event, but look again now and then in case it never comes.
    reconnectTimer = setTimeout(connect, MAX_BACKOFF_MS);
    return;
  }
  reconnectTimer = setTimeout(connect, delay);
}

function tick() {
  if (!ws) return;
  const now = Date.now();
  if (now - lastHeard > SILENCE_LIMIT_MS) {
    lost();
    return;
  }
  if (live) {
    if (now - lastHeard > PING_EVERY_MS) raw({ type: 'ping' });
    for (const entry of outbox.values()) {
      if (now - entry.at > RESEND_AFTER_MS) {
        entry.at = now;
        raw(entry.frame);
      }
    }
  }
}

function raw(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function handle(frame) {
  switch (frame.type) {
    case 'welcome':
      if (epoch !== null && frame.epoch && frame.epoch !== epoch) {
        // The server's history started afresh: all this tab holds is from the old one.
        location.reload();
        return;
      }
      epoch = frame.epoch || epoch;
      welcomed = true;
      failedUpgrades = 0;
      raw({ type: 'sync', cursors: store.syncCursors() });
      break;
    case 'synced': {
      store.synced(frame.cursors);
      scheduleAck();
      if (!live) {
        live = true;
        attempt = 0;
        store.setConnection('online');
        const now = Date.now();
        for (const entry of outbox.values()) {
          entry.at = now;
          raw(entry.frame);
        }
        onResynced();
      }
      break;
    }
    case 'msg': {
      store.ingest(frame, { live: true });
      if (!store.received(frame.object, frame.seq) && live) {
        raw({ type: 'sync', cursors: { [frame.object]: store.cursor(frame.object) } });
      }
      scheduleAck();
      break;
    }
    case 'sent': {
      const entry = outbox.get(frame.cid);
      outbox.delete(frame.cid);
      if (entry) store.sent(frame, entry.key);
      break;
    }
    case 'acked':
      acked.set(frame.object, Math.max(acked.get(frame.object) || 0, frame.seq));
      confirmed.set(frame.object, Math.max(confirmed.get(frame.object) || 0, frame.seq));
      break;
    case 'error': {
      if (frame.code === 'bad_cursor' && !frame.cid) {
        // Cursors from another history: sync from the server's stored ones instead.
        store.forgetCursors();
        raw({ type: 'sync', cursors: {} });
        break;
      }
      if (frame.cid && outbox.has(frame.cid)) {
        if (frame.code === 'in_progress' || frame.code === 'rate_limited' || frame.code === 'unavailable') break; // resent later
        const entry = outbox.get(frame.cid);
        outbox.delete(frame.cid);
        store.failed(entry.key, frame.cid, frame.message || frame.code, frame.code);
      } else {
        frameHandler(frame);
      }
      break;
    }
    case 'pong':
      break;
    default:
      frameHandler(frame);
  }
}

function scheduleAck() {
  if (ackTimer) return;
  ackTimer = setTimeout(() => {
    ackTimer = null;
    if (!live) return;
    for (const [object, seq] of Object.entries(store.syncCursors())) {
      if (seq > (acked.get(object) || 0)) {
        acked.set(object, seq);
        raw({ type: 'ack', object, seq });
      }
    }
  }, 250);
}

let counter = 0;
function newCid() {
  counter += 1;
  const random = Math.floor(Math.random() * 2 ** 32).toString(36);
  return `w${Date.now().toString(36)}${random}${counter.toString(36)}`;
}

/**
 * Sends a message, a reply when `quote` (`{ id, from, snippet }`) is given; it shows as pending
 * and is resent (same cid) until the server answers.
 */
export function sendMessage(key, kind, body, quote = null) {
  clearTimeout(typingTimer); // what was being typed is this message
  const frame = { type: 'send', cid: newCid(), to: key, kind, body };
  if (quote) frame.reply_to = quote.id;
  // The sender's own copy is made from the pending one (its echo is a repeat): it carries the quote.
  store.addPending(key, frame, quote ? { reply_to: quote } : {});
  outbox.set(frame.cid, { frame, key, at: Date.now() });
  if (live) raw(frame);
}

/** Gives up on a failed send. */
export function discard(key, cidToDrop) {
  outbox.delete(cidToDrop);
  store.dropPending(key, cidToDrop);
}

/**
 * Says the user is typing in `key`, at most once a second (the server drops more). Typing within
 * that second is said when it is over, or it would go unsaid when someone types right after
 * sending; sending a message cancels that.
 */
export function typing(key) {
  const wait = typingSentAt + TYPING_EVERY_MS - Date.now();
  if (wait > 0) {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => typing(key), wait);
    return;
  }
  if (!live) return;
  typingSentAt = Date.now();
  raw({ type: 'typing', to: key });
}

/** Tells the server (and so the user's other devices) a conversation is read up to `seq`. */
export function read(key, seq) {
  if (live && raw({ type: 'read', conversation: key, seq })) return;
  const [kind, id] = store.split(key);
  api.post(`/api/v1/conversations/${kind}/${api.q(id)}/read`, { seq }).catch(() => {});
}

/** The server's stored delivery cursor for `object`, as last confirmed to this tab. */
export function storedCursor(object) {
  return confirmed.get(object) || 0;
}

export function isLive() {
  return live;
}
