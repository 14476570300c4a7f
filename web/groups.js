// Groups: creating (public or private), finding and joining them; the user's groups with their
// role and live online counts; the owner's and admins' changes (rename, avatar, privacy, members'
// roles and mutes, removing and adding members, disbanding) and leaving, applied live from events.

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
      // The user's own copy, and a search result showing the same group.
      for (const group of [state.groups.get(frame.group_id), ...results.filter((r) => r.id === frame.group_id)]) {
        if (!group) continue;
        group.name = frame.name;
        group.avatar = frame.avatar;
        if (frame.private !== undefined) group.private = frame.private;
      }
      store.emit('groups');
      store.emit('conversations');
      return true;
    }
    case 'group_added':
      // Someone added the user: the group (and its history) is theirs without a reload.
      Promise.all([loadGroups(), store.loadProfile(frame.by)])
        .then(() => notice(`${store.userName(frame.by)} added you to ${frame.name}.`))
        .catch(() => {});
      return true;
    case 'group_member': {
      const group = state.groups.get(frame.group_id);
      if (group && frame.user_id === state.me?.id) {
        // The user's own part changed: which controls they get follows it.
        if (frame.role) group.role = frame.role;
        group.muted_until = frame.muted_until || 0;
        store.emit('groups');
      }
      store.emit('members', frame);
      return true;
    }
    case 'group_removed': {
      const group = state.groups.get(frame.group_id);
      const mine = group && group.owner === state.me?.id;
      if (frame.reason === 'disbanded') forgetResult(frame.group_id);
      drop(frame.group_id, (name) => {
        if (frame.reason === 'left') return `You left ${name}.`;
        if (frame.reason !== 'disbanded') return `You were removed from ${name}.`;
        return mine ? `You disbanded ${name}.` : `${name} was disbanded by its owner.`;
      });
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
    const group = await api.post('/api/v1/groups', { name, private: $('group-private').checked });
    $('group-name').value = '';
    $('group-private').checked = false;
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

/**
 * The group is gone for this user (left, removed or disbanded): it leaves the lists, and its
 * chat closes if it is open, with a notice made by `text(name)`. False if it was gone already.
 */
function drop(id, text) {
  if (!state.groups.has(id)) return false;
  if (state.open === `group:${id}`) {
    // The focus was in the chat, which goes: keep it on the page, at the current section tab.
    const hadFocus = $('chat').contains(document.activeElement);
    closeChat();
    if (hadFocus) document.querySelector('.tab[aria-current="true"]')?.focus();
  }
  const group = store.forgetGroup(id);
  if (text) notice(text(group.name));
  return true;
}

/** The owner or an admin renames the group or changes its avatar; the owner its privacy (`{name?, avatar?, private?}`). */
export async function update(id, change) {
  const { group } = await api.patch(`/api/v1/groups/${api.q(id)}`, change);
  const known = state.groups.get(id);
  if (known) {
    Object.assign(known, group);
    store.emit('groups');
    store.emit('conversations');
  }
  return group;
}

/** The owner (or an admin, for plain members) removes a member. */
export async function removeMember(id, userId) {
  await api.del(`/api/v1/groups/${api.q(id)}/members/${api.q(userId)}`);
  loadOnline(id);
}

/** The owner disbands the group. */
export async function disband(id) {
  await api.del(`/api/v1/groups/${api.q(id)}`);
  forgetResult(id);
  drop(id, (name) => `You disbanded ${name}.`);
}

/** A disbanded group cannot be joined: it leaves the search results too. */
function forgetResult(id) {
  const before = results.length;
  results = results.filter((group) => group.id !== id);
  if (results.length !== before) render();
}

/** A member who is not the owner leaves. */
export async function leave(id) {
  await api.post(`/api/v1/groups/${api.q(id)}/leave`);
  drop(id, (name) => `You left ${name}.`);
}

export function isOwner(id) {
  const group = state.groups.get(id);
  return Boolean(group && state.me && group.owner === state.me.id);
}

/** The user's role in a group they are in (`owner`, `admin` or `member`), or null. */
export function role(id) {
  const group = state.groups.get(id);
  if (!group) return null;
  return isOwner(id) ? 'owner' : group.role || 'member';
}

/** Whether the user may manage the group: rename it, invite, add, remove and mute members. */
export function canManage(id) {
  return ['owner', 'admin'].includes(role(id));
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
          group.private ? h('span', { class: 'tag' }, 'private') : null,
          h('span', { class: 'online-count' }, onlineText(group.id)),
          h('button', {
            type: 'button',
            'aria-label': `Open ${group.name}`,
            onclick: () => openChat(`group:${group.id}`),
          }, 'Open')))
      : [h('li', { class: 'empty' }, 'No groups yet.')]),
  );
}
