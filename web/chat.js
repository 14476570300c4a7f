// The chat view: history that loads further back at the top, messages grouped by sender and
// parted by day, sending text and images (picked, pasted or dropped, with a preview), drafts,
// the typing indicator, the message menu (reply, react, edit, seen by, recall), quotes,
// reactions, delivered and read marks, and read marks sent while the chat is in view.

import * as api from './api.js';
import * as store from './store.js';
import * as socket from './socket.js';
import * as groups from './groups.js';
import * as groupSettings from './group-settings.js';
import * as drafts from './drafts.js';
import * as dialog from './dialog.js';
import * as messageMenu from './message-menu.js';
import * as composeMode from './compose-mode.js';
import * as reactions from './reactions.js';
import * as receipts from './receipts.js';
import { linkify } from './linkify.js';
import { $, h, avatar, presenceDot, time, dayLabel, busy, showError, notice } from './dom.js';

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
    if (!state.open || composeMode.current()?.kind === 'edit') return; // an edit is no draft, nor typing
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
  messageMenu.init($('message-list'), (element) => shown.get(element.dataset.key) || null, () => state.open && render());
  composeMode.init();
  messageMenu.addAction({ label: 'Reply', applies: canAnswer, run: (message) => composeMode.reply(state.open, message) });
  messageMenu.addAction({ label: 'React…', applies: canAnswer, run: (message, more) => reactions.openPicker(message, more) });
  messageMenu.addAction({ label: 'Edit', applies: canEdit, run: (message) => composeMode.edit(state.open, message) });
  messageMenu.addAction({
    label: 'Seen by…',
    applies: (message) => receipts.canListReaders(state.open, message),
    run: (message, more) => busy(more, 'chat-error', () => receipts.showReaders(state.open, message)),
  });
  messageMenu.addAction({ label: 'Recall', applies: canRecall, run: recall });
  $('message-list').addEventListener('click', (event) => {
    const quote = event.target.closest('.quote');
    if (quote) showOriginal(quote.dataset.ref);
  });

  store.on('messages', (key) => {
    if (key === state.open) {
      render();
      markRead();
    }
  });
  store.on('receipts', (key) => key === state.open && render());
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
    composeMode.leave(); // before the draft comes in: an edit gives the box back its text
    reactions.closePicker(false);
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
  composeMode.leave();
  reactions.closePicker(false);
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
  const mode = composeMode.current();
  if (mode?.kind === 'edit') {
    saveEdit(mode.message, text);
    return;
  }
  const answered = mode?.kind === 'reply' ? mode.message : null;
  const quote = answered && { id: answered.id, from: answered.from, snippet: composeMode.snippet(answered) };
  socket.sendMessage(state.open, 'text', text, quote);
  if (answered) composeMode.leave();
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

/** Saves an edit of one's own message; it shows at once, and the `edit` event changes nothing more. */
async function saveEdit(message, text) {
  if (text === message.body) {
    composeMode.cancel();
    return;
  }
  try {
    const answer = await api.patch(`/api/v1/messages/${api.q(message.id)}`, { body: text });
    store.applyEvent({ kind: 'edit', ref: message.id, body: text, edited_at: answer.edited_at });
    if (composeMode.current()?.message === message) composeMode.cancel();
  } catch (error) {
    showError('chat-error', error.message);
  }
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

/** The owner removes a member after saying so in a dialog (as the group settings ask); the focus
 * moves on to the next Remove button in the list. */
async function removeMember(id, user, index, button) {
  const sure = await dialog.confirm({
    title: 'Remove member?',
    text: `Remove ${user.nickname || user.username} (@${user.username}) from ${state.groups.get(id)?.name || 'the group'}?`,
    yes: 'Remove member',
    no: 'Keep member',
  });
  if (!sure) return;
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

/** Whether a message can be answered or reacted to: a real text or image, sent and not recalled. */
function canAnswer(message) {
  return !message.pending && (message.kind === 'text' || message.kind === 'image') && message.from !== '0';
}

function canEdit(message) {
  return message.from === state.me?.id && !message.pending && message.kind === 'text';
}

function canRecall(message) {
  return message.from === state.me?.id && !message.pending && message.kind !== 'recalled'
    && Date.now() - message.ts < RECALL_WINDOW_MS;
}

function messageKey(message) {
  return message.pending ? `cid:${message.cid}` : message.id;
}

function signature(message, continued) {
  const quote = message.reply_to;
  return [message.id, message.kind, message.pending ? 1 : 0, message.failed || '', canRecall(message) ? 1 : 0,
    store.userName(message.from), continued ? 1 : 0, message.body, message.edited_at || '',
    quote ? store.userName(quote.from) : '', reactions.signature(message),
  ].join('|'); // the receipt mark is left out: it changes in place (see refreshFoot)
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

/** The quote of the answered message, a button that shows the original. */
function quoteOf(message) {
  const quote = message.reply_to;
  if (!quote) return null;
  const author = quote.from === state.me?.id ? 'You' : store.userName(quote.from);
  return h('button', { type: 'button', class: 'quote', dataset: { ref: quote.id, focus: 'quote' }, title: 'Show the original message' },
    h('span', { class: 'visually-hidden' }, 'In reply to '),
    h('span', { class: 'quote-author' }, author),
    h('span', { class: 'quote-snippet' }, quote.snippet || 'Photo'));
}

/** "edited", and the delivered and read mark on one's own message. */
function footOf(key, message) {
  const mark = receipts.mark(key, message);
  if (!mark && !message.edited_at) return null;
  return h('div', { class: 'foot' },
    message.edited_at ? h('span', { class: 'edited', title: `Edited ${new Date(message.edited_at).toLocaleString()}` }, 'edited') : null,
    // The ticks are a picture; the words say the same to a screen reader, and colour is not all of it.
    mark ? h('span', { class: `receipt ${mark.state}`, title: mark.text },
      mark.symbol ? h('span', { 'aria-hidden': 'true' }, mark.symbol) : null,
      h('span', { class: mark.symbol ? 'visually-hidden' : 'receipt-text' }, mark.text)) : null);
}

/** Brings a drawn message's foot (its receipt mark) up to date in place: receipts come often,
 * and redrawing the whole message would take the focus from a keyboard user on it and make a
 * screen reader read it again. */
function refreshFoot(element, key, message) {
  const mark = receipts.mark(key, message);
  if ((element.dataset.receipt || '') === (mark?.state || '') && (element.querySelector('.receipt')?.title || '') === (mark?.text || '')) return;
  if (mark) element.dataset.receipt = mark.state;
  else delete element.dataset.receipt;
  const foot = footOf(key, message);
  const old = element.querySelector(':scope > .foot');
  if (old && foot) old.replaceWith(foot);
  else if (old) old.remove();
  else if (foot) {
    const actions = element.querySelector(':scope > .actions');
    element.insertBefore(foot, actions);
  }
}

/** Scrolls to the answered message and highlights it briefly, when it is loaded. */
function showOriginal(id) {
  const original = $('message-list').querySelector(`li.msg[data-id="${CSS.escape(id)}"]`);
  if (!original) {
    notice('The original message is further back: load older messages to see it.');
    return;
  }
  original.scrollIntoView({ block: 'center', behavior: 'smooth' });
  original.focus({ preventScroll: true });
  original.classList.remove('flash');
  void original.offsetWidth; // restart the animation when asked twice
  original.classList.add('flash');
  setTimeout(() => original.classList.remove('flash'), 2000);
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
  const mark = receipts.mark(key, message);
  return h('li', {
    class: classes.join(' '),
    dataset: {
      key: messageKey(message), id: message.pending ? '' : message.id, seq: message.seq ?? '', kind: message.kind, ...(mark ? { receipt: mark.state } : {}),
    },
  },
  // In a run the name and time are said once, at its first message; screen readers still get them.
  h('div', { class: continued ? 'meta visually-hidden' : 'meta' },
    h('span', { class: 'author' }, mine ? 'You' : store.userName(message.from)),
    ' ',
    h('time', { datetime: new Date(message.ts).toISOString(), title: new Date(message.ts).toLocaleString() }, time(message.ts))),
  message.kind === 'recalled' ? null : quoteOf(message),
  bodyOf(message),
  message.kind === 'recalled' ? null : reactions.chips(message),
  footOf(key, message),
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
  // A control in a message drawn anew (a chip just pressed) gets the focus back after.
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusedRow = focused?.closest('li.msg');
  const wanted = [];
  const keep = new Set();
  shown.clear();
  for (const row of rows(messages)) {
    let entry = elements.get(row.id);
    // A message with its menu open (a reaction came meanwhile) is redrawn when the menu closes.
    if (!entry || (entry.sig !== row.sig && !messageMenu.isOpenOn(entry.element))) {
      entry = { sig: row.sig, element: row.make() };
      elements.set(row.id, entry);
    }
    if (row.message) {
      shown.set(row.id, row.message);
      refreshFoot(entry.element, key, row.message);
    }
    keep.add(row.id);
    wanted.push(entry.element);
  }
  for (const id of elements.keys()) if (!keep.has(id)) elements.delete(id);
  wanted.forEach((element, index) => {
    if (list.children[index] !== element) list.insertBefore(element, list.children[index] || null);
  });
  while (list.children.length > wanted.length) list.lastElementChild.remove();
  messageMenu.refresh(); // first: a new element takes the focus only once it has a tabindex
  if (focusedRow && !focusedRow.isConnected) {
    const again = list.querySelector(`li.msg[data-key="${CSS.escape(focusedRow.dataset.key)}"]`);
    const same = focused.dataset.focus && again?.querySelector(`[data-focus="${CSS.escape(focused.dataset.focus)}"]`);
    (same || again)?.focus({ preventScroll: true });
  }

  const target = store.chat(key);
  $('older-button').hidden = target.complete;
  $('older-button').textContent = target.loading ? 'Loading…' : 'Load older messages';
  if (prepending) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  else if (atBottom || messages.at(-1)?.pending) scroller.scrollTop = scroller.scrollHeight;
  stuckToBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
}
