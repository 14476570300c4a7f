// The conversation list: most recent first, with unread badges, a mark on muted chats, and in
// a group's preview the name of who wrote the last message.

import * as api from './api.js';
import * as store from './store.js';
import * as mutes from './mutes.js';
import { $, h, avatar } from './dom.js';

const { state } = store;
let openChat = () => {};

export function init({ onOpenChat }) {
  openChat = onOpenChat;
  for (const topic of ['conversations', 'profiles', 'groups', 'friends', 'mutes']) store.on(topic, schedule);
}

export async function loadConversations() {
  const { conversations } = await api.get('/api/v1/conversations?limit=200');
  store.setConversations(conversations);
}

let recount = null;
/** Asks the server for fresh unread counts (after a `read` that did not reach the end). */
export function recountSoon() {
  clearTimeout(recount);
  recount = setTimeout(() => loadConversations().catch(() => {}), 300);
}

let pending = false;
function schedule() {
  if (pending) return;
  pending = true;
  queueMicrotask(() => {
    pending = false;
    render();
  });
}

/** The last message in a line: in a group, with its author's name (fetched when not known yet). */
function preview(message, group) {
  if (!message) return '';
  let who = '';
  if (message.from === state.me?.id) who = 'You: ';
  else if (group && message.from !== '0') who = `${store.userName(message.from)}: `;
  if (message.kind === 'image') return `${who}[image]`;
  // The newest entry may be the recall itself, whose body is only the recalled message's id.
  if (message.kind === 'recalled' || message.kind === 'recall') return `${who}Message recalled`;
  return who + message.body;
}

function render() {
  const list = [...state.conversations.values()]
    .filter((c) => c.last || c.key === state.open)
    .filter((c) => !c.key.startsWith('group:') || state.groups.has(store.split(c.key)[1]))
    .sort((a, b) => (b.last?.ts || 0) - (a.last?.ts || 0));
  let total = 0;
  $('conversation-list').replaceChildren(
    ...list.map((conversation) => {
      const name = store.conversationName(conversation.key);
      const [kind, id] = store.split(conversation.key);
      const image = kind === 'group' ? state.groups.get(id)?.avatar : store.profile(id)?.avatar;
      total += conversation.unread;
      const unread = conversation.unread
        ? h('span', { class: 'badge unread' }, String(conversation.unread), h('span', { class: 'visually-hidden' }, ' unread'))
        : null;
      return h('li', { class: 'item', dataset: { conversation: conversation.key } },
        h('button', {
          type: 'button',
          class: `conversation${state.open === conversation.key ? ' current' : ''}`,
          'aria-current': state.open === conversation.key ? 'true' : null,
          onclick: () => openChat(conversation.key),
        },
        avatar(name, image),
        h('span', { class: 'summary' },
          h('span', { class: 'name' }, kind === 'group' ? `# ${name}` : name),
          h('span', { class: 'last' }, preview(conversation.last, kind === 'group'))),
        store.isMuted(conversation.key)
          ? h('span', { class: 'muted-icon', role: 'img', 'aria-label': mutes.describe(conversation.key), title: mutes.describe(conversation.key) }, '🔕')
          : null,
        unread));
    }),
  );
  $('no-conversations').hidden = list.length > 0;
  $('chats-badge').hidden = total === 0;
  $('chats-badge').textContent = String(total);
}
