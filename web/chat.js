// The chat view: history that loads further back at the top, sending text and images (with a
// preview), the typing indicator, recall, and read marks while the conversation is in view.

import * as api from './api.js';
import * as store from './store.js';
import * as socket from './socket.js';
import * as groups from './groups.js';
import * as groupSettings from './group-settings.js';
import { $, h, avatar, presenceDot, time, busy, showError } from './dom.js';

const { state } = store;
const RECALL_WINDOW_MS = 120_000;
const PAGE = 30;

const elements = new Map(); // message key -> { sig, element }
const recallTimers = new Map();
let previewFile = null;
let previewUrl = null;
let prepending = false;

export function init() {
  const scroller = $('message-scroller');
  scroller.addEventListener('scroll', () => {
    if (scroller.scrollTop < 40) loadOlder();
  });
  $('older-button').addEventListener('click', () => loadOlder());

  const text = $('composer-text');
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText();
    }
  });
  text.addEventListener('input', () => {
    if (state.open && text.value.trim()) socket.typing(state.open);
  });
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    sendText();
  });
  $('composer-file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    event.target.value = '';
    if (file) showPreview(file);
  });
  $('preview-send').addEventListener('click', (event) => sendImage(event.currentTarget));
  $('preview-cancel').addEventListener('click', () => {
    hidePreview();
    $('composer-text').focus();
  });
  $('members-button').addEventListener('click', toggleMembers);
  groupSettings.init();

  store.on('messages', (key) => {
    if (key === state.open) {
      render();
      markRead();
    }
  });
  store.on('typing', (key) => key === state.open && renderTyping());
  for (const topic of ['friends', 'online', 'groups', 'profiles']) store.on(topic, () => state.open && renderHead());
  // Members come and go with the online count: keep an open member list current.
  store.on('online', (id) => {
    if (state.open === `group:${id}` && $('members-button').getAttribute('aria-expanded') === 'true') {
      renderMembers(id).catch(() => {});
    }
  });
  store.on('profiles', () => state.open && render());
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('focus', markRead);
}

// --- opening and closing -------------------------------------------------------------------

export async function open(key) {
  if (state.open !== key) {
    hidePreview();
    elements.clear();
    $('message-list').replaceChildren();
    $('members').hidden = true;
    $('members-button').setAttribute('aria-expanded', 'false');
    groupSettings.reset();
    $('composer-text').value = '';
    showError('chat-error', '');
  }
  state.open = key;
  $('placeholder').hidden = true;
  $('profile-form').hidden = true;
  $('chat').hidden = false;
  renderHead();
  renderTyping();
  render();
  store.emit('conversations');
  $('composer-text').focus();
  const target = store.chat(key);
  if (!target.loaded) await loadOlder();
  else markRead();
  if (key.startsWith('group:')) groups.loadOnline(store.split(key)[1]);
}

export function close() {
  state.open = null;
  hidePreview();
  groupSettings.reset();
  $('chat').hidden = true;
  $('placeholder').hidden = false;
  store.emit('conversations');
}

// --- history -------------------------------------------------------------------------------

async function loadOlder() {
  const key = state.open;
  if (!key) return;
  const target = store.chat(key);
  if (target.loading || target.complete) return;
  target.loading = true;
  const [kind, id] = store.split(key);
  const before = store.oldestSeq(key);
  try {
    const page = await api.get(
      `/api/v1/conversations/${kind}/${api.q(id)}/messages?limit=${PAGE}${before ? `&before=${before}` : ''}`,
    );
    prepending = target.loaded;
    for (const message of page.messages) store.ingest(message, { live: false });
    target.loaded = true;
    if (!page.next_before) target.complete = true;
  } catch (error) {
    showError('chat-error', error.message);
  } finally {
    prepending = false;
    target.loading = false;
  }
  if (state.open !== key) return;
  render();
  markRead();
  // Fill the view: load more while there is nothing to scroll.
  const scroller = $('message-scroller');
  if (!target.complete && scroller.scrollHeight <= scroller.clientHeight + 40) loadOlder();
}

// --- reading -------------------------------------------------------------------------------

function markRead() {
  const key = state.open;
  if (!key || !store.isViewing(key) || !store.chat(key).loaded) return;
  const seq = store.readUpTo(key);
  if (seq) socket.read(key, seq);
}

// --- sending -------------------------------------------------------------------------------

function sendText() {
  const box = $('composer-text');
  const text = box.value;
  if (!state.open || !text.trim()) return;
  showError('chat-error', '');
  socket.sendMessage(state.open, 'text', text);
  box.value = '';
  box.focus();
}

function showPreview(file) {
  hidePreview();
  previewFile = file;
  previewUrl = URL.createObjectURL(file);
  $('preview-image').src = previewUrl;
  $('image-preview').hidden = false;
  $('preview-send').focus();
}

function hidePreview() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  previewFile = null;
  $('image-preview').hidden = true;
  $('preview-image').removeAttribute('src');
}

async function sendImage(button) {
  const key = state.open;
  const file = previewFile;
  if (!key || !file) return;
  await busy(button, 'chat-error', async () => {
    const uploaded = await api.upload(file);
    socket.sendMessage(key, 'image', uploaded.id);
    hidePreview();
    $('composer-text').focus();
  });
}

function recall(message, button) {
  return busy(button, 'chat-error', () => api.post(`/api/v1/messages/${api.q(message.id)}/recall`));
}

// --- members -------------------------------------------------------------------------------

async function toggleMembers() {
  const button = $('members-button');
  const showing = button.getAttribute('aria-expanded') === 'true';
  button.setAttribute('aria-expanded', String(!showing));
  $('members').hidden = showing;
  if (showing || !state.open?.startsWith('group:')) return;
  await busy(button, 'chat-error', () => renderMembers(store.split(state.open)[1]));
}

async function renderMembers(id) {
  const list = await groups.members(id);
  if (state.open !== `group:${id}`) return;
  const owner = state.groups.get(id)?.owner;
  const mayRemove = groups.isOwner(id);
  $('member-list').replaceChildren(
    ...list.map((user, index) =>
      h('li', { class: 'item', dataset: { user: user.username } },
        avatar(user.nickname || user.username, user.avatar),
        h('span', { class: 'name' }, user.nickname || user.username, h('span', { class: 'handle' }, ` @${user.username}`)),
        user.id === owner ? h('span', { class: 'tag' }, 'owner') : null,
        mayRemove && user.id !== owner
          ? h('button', {
            type: 'button',
            class: 'quiet',
            'aria-label': `Remove ${user.username} from the group`,
            onclick: (event) => removeMember(id, user, index, event.currentTarget),
          }, 'Remove')
          : null)),
  );
}

/** The owner removes a member; the focus moves on to the next Remove button in the list. */
async function removeMember(id, user, index, button) {
  await busy(button, 'chat-error', async () => {
    await groups.removeMember(id, user.id);
    await renderMembers(id);
    if (state.open !== `group:${id}`) return;
    const list = $('member-list');
    const next = list.children[index]?.querySelector('button')
      || [...list.querySelectorAll('button')].at(-1)
      || $('members-button');
    next.focus();
  });
}

// --- rendering -----------------------------------------------------------------------------

function renderHead() {
  const key = state.open;
  const [kind, id] = store.split(key);
  const name = store.conversationName(key);
  $('chat-title').textContent = kind === 'group' ? `# ${name}` : name;
  const image = kind === 'group' ? state.groups.get(id)?.avatar : store.profile(id)?.avatar;
  $('chat-avatar').replaceChildren(avatar(name, image));
  const presence = $('chat-presence');
  if (kind === 'group') {
    presence.replaceChildren(h('span', { class: 'online-count' }, groups.onlineText(id)));
    $('members-button').hidden = false;
  } else {
    const friend = state.friends.get(id);
    presence.replaceChildren(
      ...(friend ? [presenceDot(friend.online), friend.online ? ' online' : ' offline'] : ['not a friend']),
    );
    $('members-button').hidden = true;
  }
  groupSettings.renderControls();
}

function renderTyping() {
  const entry = store.typingIn(state.open);
  $('typing').textContent = entry ? `${store.userName(entry.from)} is typing…` : '';
}

function canRecall(message) {
  return message.from === state.me?.id && !message.pending && message.kind !== 'recalled'
    && Date.now() - message.ts < RECALL_WINDOW_MS;
}

function messageKey(message) {
  return message.pending ? `cid:${message.cid}` : message.id;
}

function signature(message) {
  return [message.id, message.kind, message.pending ? 1 : 0, message.failed || '', canRecall(message) ? 1 : 0,
    store.userName(message.from)].join('|');
}

function bodyOf(message) {
  if (message.kind === 'recalled') return h('p', { class: 'body recalled' }, 'This message was recalled.');
  if (message.kind === 'image') {
    const image = h('img', { alt: `Image from ${store.userName(message.from)}`, class: 'thumb' });
    const button = h('button', { type: 'button', class: 'image-button', 'aria-label': 'Show the full image' }, image);
    api.mediaUrl(message.body, true).then((url) => {
      if (url) image.src = url;
      else image.alt = 'Image not available';
    });
    button.addEventListener('click', async () => {
      const full = await api.mediaUrl(message.body, false);
      if (full) image.src = full;
      button.classList.toggle('full');
    });
    return h('div', { class: 'body image' }, button);
  }
  if (message.kind !== 'text') return h('p', { class: 'body' }, `[${message.kind}] `, message.body);
  return h('p', { class: 'body' }, message.body);
}

function build(message) {
  const mine = message.from === state.me?.id;
  const key = state.open;
  const status = [];
  if (message.failed) {
    status.push(
      h('span', { class: 'error' }, `Not sent: ${message.failed}`),
      h('button', {
        type: 'button',
        class: 'quiet',
        onclick: () => socket.discard(key, message.cid),
      }, 'Dismiss'),
    );
  } else if (message.pending) {
    status.push(h('span', { class: 'status' }, 'sending…'));
  }
  if (canRecall(message)) {
    status.push(h('button', {
      type: 'button',
      class: 'quiet recall',
      'aria-label': 'Recall this message',
      onclick: (event) => recall(message, event.currentTarget),
    }, 'Recall'));
    if (!recallTimers.has(message.id)) {
      recallTimers.set(message.id, setTimeout(() => {
        recallTimers.delete(message.id);
        if (state.open === key) render();
      }, RECALL_WINDOW_MS - (Date.now() - message.ts) + 50));
    }
  }
  return h('li', {
    class: `msg ${mine ? 'mine' : 'theirs'}${message.pending ? ' pending' : ''}${message.kind === 'recalled' ? ' recalled' : ''}`,
    dataset: { id: message.pending ? '' : message.id, seq: message.seq ?? '', kind: message.kind },
  },
  h('div', { class: 'meta' },
    h('span', { class: 'author' }, mine ? 'You' : store.userName(message.from)),
    ' ',
    h('time', { datetime: new Date(message.ts).toISOString() }, time(message.ts))),
  bodyOf(message),
  status.length ? h('div', { class: 'actions' }, ...status) : null);
}

/** Brings the list in line with the store, reusing the elements of unchanged messages. */
function render() {
  const key = state.open;
  if (!key) return;
  const scroller = $('message-scroller');
  const list = $('message-list');
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  const messages = store.ordered(key).filter((m) => m.kind !== 'recall');
  const wanted = [];
  const keep = new Set();
  for (const message of messages) {
    const id = messageKey(message);
    const sig = signature(message);
    let entry = elements.get(id);
    if (!entry || entry.sig !== sig) {
      entry = { sig, element: build(message) };
      elements.set(id, entry);
    }
    keep.add(id);
    wanted.push(entry.element);
  }
  for (const id of elements.keys()) if (!keep.has(id)) elements.delete(id);
  wanted.forEach((element, index) => {
    if (list.children[index] !== element) list.insertBefore(element, list.children[index] || null);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();

  const target = store.chat(key);
  $('older-button').hidden = target.complete;
  $('older-button').textContent = target.loading ? 'Loading…' : 'Load older messages';
  if (prepending) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  else if (atBottom || messages.at(-1)?.pending) scroller.scrollTop = scroller.scrollHeight;
}
