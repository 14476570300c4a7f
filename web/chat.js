// The chat view: history that loads further back at the top, messages grouped by sender and
// parted by day, sending text and images (picked, pasted or dropped, with a preview), drafts,
// the typing indicator, the message menu (recall), and read marks while the chat is in view.

import * as api from './api.js';
import * as store from './store.js';
import * as socket from './socket.js';
import * as groups from './groups.js';
import * as groupSettings from './group-settings.js';
import * as drafts from './drafts.js';
import * as messageMenu from './message-menu.js';
import { linkify } from './linkify.js';
import { $, h, avatar, presenceDot, time, dayLabel, busy, showError } from './dom.js';

const { state } = store;
const RECALL_WINDOW_MS = 120_000;
const PAGE = 30;
const RUN_GAP_MS = 5 * 60_000; // one sender's messages closer than this share one name
const THUMB_PX = 210; // the thumbnail's largest side (14rem in style.css)
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

const elements = new Map(); // message key -> { sig, element }
const recallTimers = new Map();
let previewFile = null;
let previewUrl = null;
let prepending = false;
let stuckToBottom = true; // the reader is at the newest message: keep them there as things load
const imageSizes = new Map(); // upload id -> { width, height }, for the images this tab uploaded

/** Wires the chat view's controls and follows the store's messages, typing and people. */
export function init() {
  const scroller = $('message-scroller');
  scroller.addEventListener('scroll', () => {
    stuckToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
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
    if (!state.open) return;
    drafts.save(state.open, text.value);
    if (text.value.trim()) socket.typing(state.open);
  });
  // A pasted image goes to the preview, as one picked with the button does.
  text.addEventListener('paste', (event) => {
    const file = imageIn(event.clipboardData);
    if (!file) return;
    event.preventDefault();
    showPreview(file);
  });
  const chatView = $('chat');
  chatView.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    chatView.classList.add('dropping');
  });
  chatView.addEventListener('dragleave', (event) => {
    if (!chatView.contains(event.relatedTarget)) chatView.classList.remove('dropping');
  });
  chatView.addEventListener('drop', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    chatView.classList.remove('dropping');
    const file = imageIn(event.dataTransfer);
    if (file) showPreview(file);
    else showError('chat-error', 'Only images (PNG, JPEG, GIF or WebP) can be sent.');
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
  messageMenu.init($('message-list'), (element) => shown.get(element.dataset.key) || null);
  messageMenu.addAction({ label: 'Recall', applies: canRecall, run: recall });

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
  store.on('profiles', () => {
    if (!state.open) return;
    render();
    renderTyping(); // the name of whoever is typing may just have arrived
  });
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('focus', markRead);
}

// --- opening and closing -------------------------------------------------------------------

/** Shows conversation `key` (its draft in the composer), loading its newest history if needed. */
export async function open(key) {
  if (state.open !== key) {
    hidePreview();
    elements.clear();
    $('message-list').replaceChildren();
    $('members').hidden = true;
    $('members-button').setAttribute('aria-expanded', 'false');
    groupSettings.reset();
    $('composer-text').value = drafts.load(key);
    showError('chat-error', '');
    stuckToBottom = true;
  }
  state.open = key;
  $('placeholder').hidden = true;
  $('profile-view').hidden = true;
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

/** Hides the chat; its messages count as unread again from here on. */
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
  drafts.save(state.open, '');
  box.focus();
}

/** The first image among the files of a paste or a drop, if any. */
function imageIn(transfer) {
  if (!transfer) return null;
  const files = [...(transfer.files || [])];
  for (const item of transfer.items || []) {
    if (item.kind === 'file' && !files.length) files.push(item.getAsFile());
  }
  return files.find((file) => file && IMAGE_TYPES.includes(file.type)) || null;
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
    let uploaded;
    try {
      uploaded = await api.upload(file);
    } catch (error) {
      // Refused (not an image, too large): the preview would stay broken; the error says why.
      hidePreview();
      $('composer-text').focus();
      throw error;
    }
    if (uploaded.width && uploaded.height) imageSizes.set(uploaded.id, { width: uploaded.width, height: uploaded.height });
    socket.sendMessage(key, 'image', uploaded.id);
    hidePreview();
    $('composer-text').focus();
  });
}

/** Recalls one of the user's messages (from the message menu). */
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

function signature(message, continued) {
  return [message.id, message.kind, message.pending ? 1 : 0, message.failed || '', canRecall(message) ? 1 : 0,
    store.userName(message.from), continued ? 1 : 0].join('|');
}

/** The day a timestamp falls on, in local time (for the separators). */
function dayOf(ts) {
  return new Date(ts).toDateString();
}

/** Whether `message` continues the run of `previous`: the same sender, the same day, soon after. */
function continues(previous, message) {
  return Boolean(previous) && previous.from === message.from && dayOf(previous.ts) === dayOf(message.ts)
    && message.ts - previous.ts < RUN_GAP_MS;
}

/** An image's thumbnail, given its size when known so the space is kept before it loads. */
function thumbnail(message) {
  const image = h('img', { alt: `Image from ${store.userName(message.from)}`, class: 'thumb' });
  const size = imageSizes.get(message.body);
  if (size) {
    const scale = Math.min(1, THUMB_PX / size.width, THUMB_PX / size.height);
    image.width = Math.max(1, Math.round(size.width * scale));
    image.height = Math.max(1, Math.round(size.height * scale));
  }
  // An image of unknown size grows when it loads: stay at the bottom if the reader was there.
  image.addEventListener('load', () => {
    if (stuckToBottom) $('message-scroller').scrollTop = $('message-scroller').scrollHeight;
  });
  return image;
}

function bodyOf(message) {
  if (message.kind === 'recalled') return h('p', { class: 'body recalled' }, 'This message was recalled.');
  if (message.kind === 'image') {
    const image = thumbnail(message);
    const button = h('button', { type: 'button', class: 'image-button', 'aria-label': 'Show the full image' }, image);
    api.mediaUrl(message.body, true).then((url) => {
      if (url) image.src = url;
      else image.alt = 'Image not available';
    });
    button.addEventListener('click', async () => {
      const full = await api.mediaUrl(message.body, false);
      if (full) image.src = full;
      image.removeAttribute('width');
      image.removeAttribute('height');
      button.classList.toggle('full');
    });
    return h('div', { class: 'body image' }, button);
  }
  if (message.kind !== 'text') return h('p', { class: 'body' }, `[${message.kind}] `, message.body);
  return h('p', { class: 'body' }, ...linkify(message.body));
}

function build(message, continued) {
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
  if (canRecall(message) && !recallTimers.has(message.id)) {
    // When the window closes, Recall leaves the message's menu.
    recallTimers.set(message.id, setTimeout(() => {
      recallTimers.delete(message.id);
      if (state.open === key) render();
    }, RECALL_WINDOW_MS - (Date.now() - message.ts) + 50));
  }
  const classes = ['msg', mine ? 'mine' : 'theirs'];
  if (continued) classes.push('continued');
  if (message.pending) classes.push('pending');
  if (message.kind === 'recalled') classes.push('recalled');
  return h('li', {
    class: classes.join(' '),
    dataset: { key: messageKey(message), id: message.pending ? '' : message.id, seq: message.seq ?? '', kind: message.kind },
  },
  // In a run the name and time are said once, at its first message; screen readers still get them.
  h('div', { class: continued ? 'meta visually-hidden' : 'meta' },
    h('span', { class: 'author' }, mine ? 'You' : store.userName(message.from)),
    ' ',
    h('time', { datetime: new Date(message.ts).toISOString(), title: new Date(message.ts).toLocaleString() }, time(message.ts))),
  bodyOf(message),
  status.length ? h('div', { class: 'actions' }, ...status) : null);
}

/** The rows of the list: each message, with a separator where a new day starts. */
function rows(messages) {
  const out = [];
  let previous = null;
  for (const message of messages) {
    if (!previous || dayOf(previous.ts) !== dayOf(message.ts)) {
      const label = dayLabel(message.ts);
      out.push({ id: `day:${dayOf(message.ts)}`, sig: label, make: () => h('li', { class: 'day' }, h('span', {}, label)) });
    }
    const continued = continues(previous, message);
    out.push({ id: messageKey(message), sig: signature(message, continued), message, make: () => build(message, continued) });
    previous = message;
  }
  return out;
}

const shown = new Map(); // message key -> the message its element shows (for the message menu)

/** Brings the list in line with the store, reusing the elements of unchanged rows. */
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
  shown.clear();
  for (const row of rows(messages)) {
    let entry = elements.get(row.id);
    if (!entry || entry.sig !== row.sig) {
      entry = { sig: row.sig, element: row.make() };
      elements.set(row.id, entry);
    }
    if (row.message) shown.set(row.id, row.message);
    keep.add(row.id);
    wanted.push(entry.element);
  }
  for (const id of elements.keys()) if (!keep.has(id)) elements.delete(id);
  wanted.forEach((element, index) => {
    if (list.children[index] !== element) list.insertBefore(element, list.children[index] || null);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();
  messageMenu.refresh();

  const target = store.chat(key);
  $('older-button').hidden = target.complete;
  $('older-button').textContent = target.loading ? 'Loading…' : 'Load older messages';
  if (prepending) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  else if (atBottom || messages.at(-1)?.pending) scroller.scrollTop = scroller.scrollHeight;
  stuckToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
}
