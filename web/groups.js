// Groups: creating, finding and joining them; the user's groups with live online counts.

import * as api from './api.js';
import * as store from './store.js';
import { $, h, avatar, busy, notice } from './dom.js';

const { state } = store;
let openChat = () => {};
let closeChat = () => {};
let results = [];

export function init({ onOpenChat, onCloseChat }) {
  openChat = onOpenChat;
  closeChat = onCloseChat;
  $('group-create-form').addEventListener('submit', (event) => {
    event.preventDefault();
    create(event.submitter);
  });
  $('group-search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search(event.submitter);
  });
  store.on('groups', render);
  store.on('online', render);
}

// --- data ----------------------------------------------------------------------------------

export async function loadGroups() {
  const { groups } = await api.get('/api/v1/groups');
  state.groups.clear();
  for (const group of groups) state.groups.set(group.id, group);
  store.emit('groups');
  store.emit('conversations');
  await Promise.all(groups.map((group) => loadOnline(group.id)));
}

export async function loadOnline(id) {
  try {
    const { online } = await api.get(`/api/v1/groups/${api.q(id)}/online`);
    state.groupOnline.set(id, online);
    store.emit('online', id);
  } catch {
    /* not a member any more */
  }
}

/** Every member of a group, page by page. */
export async function members(id) {
  const all = [];
  let after = null;
  do {
    const page = await api.get(`/api/v1/groups/${api.q(id)}/members?limit=500${after ? `&after=${api.q(after)}` : ''}`);
    all.push(...page.members);
    after = page.next_after || null;
  } while (after);
  store.rememberProfiles(all);
  return all;
}

export function handleEvent(frame) {
  switch (frame.type) {
    case 'group_online':
      state.groupOnline.set(frame.group_id, frame.online);
      store.emit('online', frame.group_id);
      return true;
    case 'group_updated': {
      const group = state.groups.get(frame.group_id);
      if (group) {
        group.name = frame.name;
        group.avatar = frame.avatar;
        store.emit('groups');
        store.emit('conversations');
      }
      return true;
    }
    case 'group_removed': {
      const group = state.groups.get(frame.group_id);
      notice(`${frame.reason === 'disbanded' ? 'Disbanded' : 'You were removed from'}: ${group?.name || 'a group'}`);
      state.groups.delete(frame.group_id);
      state.conversations.delete(`group:${frame.group_id}`);
      if (state.open === `group:${frame.group_id}`) closeChat();
      store.emit('groups');
      store.emit('conversations');
      return true;
    }
    default:
      return false;
  }
}

// --- actions -------------------------------------------------------------------------------

async function create(button) {
  const name = $('group-name').value.trim();
  if (!name) return;
  await busy(button, 'groups-error', async () => {
    const group = await api.post('/api/v1/groups', { name });
    $('group-name').value = '';
    await loadGroups();
    openChat(`group:${group.id}`);
  });
}

async function search(button) {
  const text = $('group-search').value.trim();
  if (!text) return;
  await busy(button, 'groups-error', async () => {
    ({ groups: results } = await api.get(`/api/v1/groups/search?q=${api.q(text)}&limit=20`));
    render();
    if (!results.length) $('groups-error').textContent = `No group found for “${text}”.`;
  });
}

function join(group, button) {
  return busy(button, 'groups-error', async () => {
    await api.post(`/api/v1/groups/${api.q(group.id)}/join`);
    await loadGroups();
    openChat(`group:${group.id}`);
  });
}

// --- rendering -----------------------------------------------------------------------------

export function onlineText(id) {
  const count = state.groupOnline.get(id);
  return count === undefined ? '' : `${count} online`;
}

function render() {
  $('group-results').replaceChildren(
    ...results.map((group) =>
      h('li', { class: 'item', dataset: { group: group.name } },
        avatar(group.name, group.avatar),
        h('span', { class: 'name' }, group.name),
        state.groups.has(group.id)
          ? h('span', { class: 'tag' }, 'member')
          : h('button', {
            type: 'button',
            'aria-label': `Join ${group.name}`,
            onclick: (event) => join(group, event.currentTarget),
          }, 'Join'))),
  );
  const groups = [...state.groups.values()];
  $('group-list').replaceChildren(
    ...(groups.length
      ? groups.map((group) =>
        h('li', { class: 'item', dataset: { group: group.name } },
          avatar(group.name, group.avatar),
          h('span', { class: 'name' }, group.name),
          h('span', { class: 'online-count' }, onlineText(group.id)),
          h('button', {
            type: 'button',
            'aria-label': `Open ${group.name}`,
            onclick: () => openChat(`group:${group.id}`),
          }, 'Open')))
      : [h('li', { class: 'empty' }, 'No groups yet.')]),
  );
}
