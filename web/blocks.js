// Blocking people: blocking after a confirmation (it ends the friendship and any request, and
// stops messages and requests both ways), the "Blocked people" list of the profile screen with
// Unblock, kept current from the `blocked` events of the user's other devices.

import * as api from './api.js';
import * as store from './store.js';
import * as dialog from './dialog.js';
import { $, h, avatar, busy } from './dom.js';

const blocked = new Map(); // user id -> profile
let changed = () => {};

/** `onChange()` runs after a block or unblock (the friend list and requests change with it). */
export function init({ onChange }) {
  changed = onChange;
  render();
}

/** Reads the blocked list. */
export async function load() {
  const { users } = await api.get('/api/v1/blocks');
  blocked.clear();
  for (const user of users) blocked.set(user.id, user);
  store.rememberProfiles(users);
  render();
}

/** Whether the user blocked `id`. */
export function isBlocked(id) {
  return blocked.has(id);
}

/** Blocks `user` once the user confirms; false when they did not. */
export async function block(user, button, errorId) {
  const name = user.nickname || user.username;
  const sure = await dialog.confirm({
    title: 'Block this person?',
    text: `Block ${name} (@${user.username})? You stop being friends, and neither of you can message the other or ask to be friends until you unblock them. Group messages still show.`,
    yes: 'Block',
    no: 'Cancel',
  });
  if (!sure) return false;
  await busy(button, errorId, async () => {
    await api.put(`/api/v1/blocks/${api.q(user.id)}`);
    blocked.set(user.id, user);
    render();
    changed();
  });
  return true;
}

/** The `blocked` event: another device (or this one) blocked or unblocked someone. */
export function handleEvent(frame) {
  if (frame.type !== 'blocked') return false;
  load().catch(() => {});
  changed();
  return true;
}

async function unblock(user, button) {
  await busy(button, 'blocks-error', async () => {
    await api.del(`/api/v1/blocks/${api.q(user.id)}`);
    blocked.delete(user.id);
    render();
    changed();
    $('blocks-title').focus();
  });
}

function render() {
  const users = [...blocked.values()].sort((a, b) => a.username.localeCompare(b.username));
  $('block-list').replaceChildren(...(users.length
    ? users.map((user) => h('li', { class: 'item', dataset: { user: user.username } },
      avatar(user.nickname || user.username, user.avatar),
      h('span', { class: 'name' }, user.nickname || user.username, h('span', { class: 'handle' }, ` @${user.username}`)),
      h('button', {
        type: 'button',
        class: 'quiet',
        'aria-label': `Unblock ${user.username}`,
        onclick: (event) => unblock(user, event.currentTarget),
      }, 'Unblock')))
    : [h('li', { class: 'empty' }, 'Nobody is blocked.')]));
}
