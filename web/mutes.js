// Muting conversations: the Mute control in the chat header (for an hour, for 8 hours or until
// unmuted) and Unmute, the `muted` events of the user's other devices, and a timer that ends a
// timed mute on time. A muted chat still counts its unread messages; attention.js stays quiet.

import * as api from './api.js';
import * as store from './store.js';
import { $, busy, time } from './dom.js';

const { state } = store;
let timer = null;
let shownFor = null; // the conversation the header control was drawn for

/** Wires the header control and follows the open conversation and its mute. */
export function init() {
  $('mute-button').addEventListener('click', (event) => toggle(event.currentTarget));
  for (const button of $('mute-options').querySelectorAll('button')) {
    button.addEventListener('click', () => mute(Number(button.dataset.hours), button));
  }
  $('mute-options').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') showOptions(false);
  });
  store.on('conversations', render); // a chat opened or closed
  store.on('mutes', () => {
    render();
    scheduleExpiry();
  });
}

/** The `muted` event: a conversation muted or unmuted on one of the user's devices. */
export function handleEvent(frame) {
  if (frame.type !== 'muted') return false;
  store.setMuted(frame.conversation, frame.muted, frame.until || 0);
  return true;
}

/** What the mute of `key` is, in words: for the header and the chat list's labels. */
export function describe(key) {
  if (!store.isMuted(key)) return '';
  const until = state.mutes.get(key);
  return until ? `muted until ${time(until)}` : 'muted';
}

function path(key) {
  const [kind, id] = store.split(key);
  return `/api/v1/conversations/${kind}/${api.q(id)}/mute`;
}

async function mute(hours, button) {
  const key = state.open;
  if (!key) return;
  await busy(button, 'chat-error', async () => {
    const until = hours ? Date.now() + hours * 3_600_000 : 0;
    await api.put(path(key), until ? { until } : {});
    store.setMuted(key, true, until);
    showOptions(false);
  });
}

async function toggle(button) {
  const key = state.open;
  if (!key) return;
  if (!store.isMuted(key)) {
    showOptions($('mute-options').hidden);
    return;
  }
  await busy(button, 'chat-error', async () => {
    await api.del(path(key));
    store.setMuted(key, false);
  });
}

function showOptions(show, moveFocus = true) {
  $('mute-options').hidden = !show;
  $('mute-button').setAttribute('aria-expanded', String(show));
  if (!moveFocus) return;
  if (show) $('mute-options').querySelector('button').focus();
  else $('mute-button').focus();
}

function render() {
  const key = state.open;
  const button = $('mute-button');
  if (key !== shownFor) {
    shownFor = key;
    showOptions(false, false);
  }
  button.hidden = !key;
  if (!key) return;
  const muted = store.isMuted(key);
  button.textContent = muted ? 'Unmute' : 'Mute';
  button.title = muted ? `This chat is ${describe(key)}` : 'Mute notifications for this chat';
  if (muted) {
    button.removeAttribute('aria-expanded');
    $('mute-options').hidden = true;
  } else {
    button.setAttribute('aria-expanded', String(!$('mute-options').hidden));
  }
}

/** Redraws when the first timed mute ends, so its icon and control go on time. */
function scheduleExpiry() {
  clearTimeout(timer);
  const now = Date.now();
  const next = Math.min(...[...state.mutes.values()].filter((until) => until > now));
  if (Number.isFinite(next)) {
    timer = setTimeout(() => {
      store.emit('mutes');
      store.emit('conversations');
    }, Math.min(next - now + 50, 2 ** 31 - 1));
  }
}
