// The members in the group settings: each with their role (owner, admin) and whether they are
// muted, and the controls the user's own role allows: the owner makes members admins (or plain
// members again); the owner, and admins for plain members, mute for a while, unmute and remove
// (after a confirmation); both add friends of theirs. Kept current from the group's events.

import * as api from './api.js';
import * as store from './store.js';
import * as groups from './groups.js';
import * as dialog from './dialog.js';
import { $, h, avatar, busy } from './dom.js';

const { state } = store;
const MUTE_HOURS = [1, 8, 24];
let groupId = null;
let muting = null; // the member whose mute choices are shown
let shown = []; // the members as last read

/** Wires adding a friend, and follows the events that change the list. */
export function init() {
  $('member-add-form').addEventListener('submit', (event) => {
    event.preventDefault();
    add(event.submitter);
  });
  store.on('members', (frame) => frame.group_id === groupId && refresh());
  store.on('online', (id) => id === groupId && refresh()); // members come and go with the count
  store.on('groups', () => groupId && refresh()); // the user's own role may have changed
  store.on('friends', () => groupId && refresh());
}

/** Shows the members of group `id`. */
export async function show(id) {
  groupId = id;
  muting = null;
  $('group-members-status').textContent = '';
  await refresh();
}

/** Forgets the list (the settings closed). */
export function reset() {
  groupId = null;
  muting = null;
  $('group-member-list').replaceChildren();
  $('member-add-friend').replaceChildren();
  shown = [];
}

let loading = null;
/** Reads the members again and draws them; calls during a read wait for one more. */
function refresh() {
  const id = groupId;
  if (!id) return Promise.resolve();
  loading = (loading || Promise.resolve()).then(() => busy(null, 'group-members-status', async () => {
    const list = await groups.members(id);
    if (groupId === id) render(id, list);
  }));
  return loading;
}

// --- who may do what -----------------------------------------------------------------------

/** Whether the user may mute or remove `member`: the owner anyone else, an admin plain members. */
function mayModerate(id, member) {
  if (member.id === state.me?.id) return false;
  const mine = groups.role(id);
  return mine === 'owner' || (mine === 'admin' && member.role === 'member');
}

function isMuted(member) {
  return Boolean(member.muted_until && member.muted_until > Date.now());
}

// --- actions -------------------------------------------------------------------------------

function name(member) {
  return member.nickname || member.username;
}

async function setRole(id, member, role, button) {
  await busy(button, 'group-members-status', async () => {
    await api.patch(`/api/v1/groups/${api.q(id)}/members/${api.q(member.id)}`, { role });
    $('group-members-status').textContent = role === 'admin'
      ? `${name(member)} is now an admin.`
      : `${name(member)} is a plain member again.`;
    await refresh();
    focusRow(member, 'role');
  });
}

/** Mutes `member` for `hours` (0 lifts the mute). */
async function mute(id, member, hours, button) {
  await busy(button, 'group-members-status', async () => {
    const until = hours ? Date.now() + hours * 3_600_000 : 0;
    await api.patch(`/api/v1/groups/${api.q(id)}/members/${api.q(member.id)}`, { muted_until: until });
    muting = null;
    $('group-members-status').textContent = hours
      ? `${name(member)} is muted for ${hours} ${hours === 1 ? 'hour' : 'hours'}.`
      : `${name(member)} can write again.`;
    await refresh();
    focusRow(member, 'mute');
  });
}

async function remove(id, member, button) {
  const sure = await dialog.confirm({
    title: 'Remove member?',
    text: `Remove ${name(member)} (@${member.username}) from ${state.groups.get(id)?.name || 'the group'}? They can come back only if they are invited or added again${state.groups.get(id)?.private ? '' : ', or join it again'}.`,
    yes: 'Remove member',
    no: 'Keep member',
  });
  if (!sure) return;
  await busy(button, 'group-members-status', async () => {
    await groups.removeMember(id, member.id);
    $('group-members-status').textContent = `${name(member)} was removed.`;
    await refresh();
    $('group-members-title').focus();
  });
}

async function add(button) {
  const id = groupId;
  const userId = $('member-add-friend').value;
  if (!id || !userId) return;
  await busy(button, 'group-members-status', async () => {
    await api.post(`/api/v1/groups/${api.q(id)}/members`, { user_id: userId });
    $('group-members-status').textContent = `${store.userName(userId)} was added.`;
    await refresh();
  });
}

/** Keeps the keyboard where it was after the list is drawn again. */
function focusRow(member, control) {
  const row = $('group-member-list').querySelector(`li[data-user-id="${CSS.escape(member.id)}"]`);
  (row?.querySelector(`[data-control="${control}"]`) || row?.querySelector('button'))?.focus();
}

// --- rendering -----------------------------------------------------------------------------

function until(ts) {
  return new Date(ts).toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' });
}

function controls(id, member) {
  const out = [];
  const label = member.username;
  if (groups.isOwner(id) && member.id !== state.me?.id) {
    const admin = member.role === 'admin';
    out.push(h('button', {
      type: 'button',
      class: 'quiet',
      dataset: { control: 'role' },
      // The visible words start the name, so speech control ("click Make admin") finds it.
      'aria-label': admin ? `Make member: ${label}` : `Make admin: ${label}`,
      onclick: (event) => setRole(id, member, admin ? 'member' : 'admin', event.currentTarget),
    }, admin ? 'Make member' : 'Make admin'));
  }
  if (mayModerate(id, member)) {
    if (isMuted(member)) {
      out.push(h('button', {
        type: 'button', class: 'quiet', dataset: { control: 'mute' }, 'aria-label': `Unmute ${label}`,
        onclick: (event) => mute(id, member, 0, event.currentTarget),
      }, 'Unmute'));
    } else {
      const open = muting === member.id;
      out.push(h('button', {
        type: 'button',
        class: 'quiet',
        dataset: { control: 'mute' },
        'aria-expanded': String(open),
        'aria-label': `Mute ${label}…`,
        onclick: () => {
          muting = open ? null : member.id;
          render(id, shown);
          const row = $('group-member-list').querySelector(`li[data-user-id="${CSS.escape(member.id)}"]`);
          row?.querySelector(open ? '[data-control="mute"]' : '.mute-choices button')?.focus();
        },
      }, 'Mute…'));
      if (open) {
        out.push(h('span', { class: 'mute-choices', role: 'group', 'aria-label': `Mute ${label} for` },
          ...MUTE_HOURS.map((hours) => h('button', {
            type: 'button',
            'aria-label': `Mute ${label} for ${hours} ${hours === 1 ? 'hour' : 'hours'}`,
            onclick: (event) => mute(id, member, hours, event.currentTarget),
          }, `${hours} ${hours === 1 ? 'hour' : 'hours'}`))));
      }
    }
    out.push(h('button', {
      type: 'button', class: 'quiet', 'aria-label': `Remove member ${label}`,
      onclick: (event) => remove(id, member, event.currentTarget),
    }, 'Remove'));
  }
  return out;
}

function render(id, list) {
  shown = list;
  const order = { owner: 0, admin: 1, member: 2 };
  list.sort((a, b) => order[a.role] - order[b.role] || a.username.localeCompare(b.username));
  $('group-member-list').replaceChildren(...list.map((member) =>
    h('li', { class: 'item', dataset: { user: member.username, userId: member.id, role: member.role } },
      avatar(name(member), member.avatar),
      h('span', { class: 'name' }, name(member), h('span', { class: 'handle' }, ` @${member.username}`)),
      member.role !== 'member' ? h('span', { class: `tag role ${member.role}` }, member.role) : null,
      isMuted(member) ? h('span', { class: 'tag muted' }, `muted until ${until(member.muted_until)}`) : null,
      ...controls(id, member))));

  // Friends not in the group yet, for the owner's and admins' "Add a friend".
  const inGroup = new Set(list.map((member) => member.id));
  const candidates = [...state.friends.values()].map((f) => f.user).filter((user) => !inGroup.has(user.id));
  const select = $('member-add-friend');
  const chosen = select.value;
  select.replaceChildren(...(candidates.length
    ? candidates.map((user) => h('option', { value: user.id }, `${user.nickname || user.username} (@${user.username})`))
    : [h('option', { value: '' }, 'No friends to add')]));
  if (candidates.some((user) => user.id === chosen)) select.value = chosen;
  $('member-add-form').querySelector('button').disabled = !candidates.length;
}
