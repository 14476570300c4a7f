// Invite links, in the group settings of the owner and admins: make one (how long it lasts and
// how many may join with it), see each link in full with a Copy button, its uses and expiry,
// and revoke it. A link is the page's address plus the invite's `url` (`/#/invite/<code>`).

import * as api from './api.js';
import { $, h, busy } from './dom.js';

let groupId = null;

/** Wires the form that makes a link. */
export function init() {
  $('invite-form').addEventListener('submit', (event) => {
    event.preventDefault();
    create(event.submitter);
  });
}

/** Shows the invite links of group `id`. */
export async function show(id) {
  groupId = id;
  $('invite-status').textContent = '';
  $('invite-list').replaceChildren();
  await busy(null, 'invite-status', () => load(id));
}

/** Forgets the group's links (the settings closed). */
export function reset() {
  groupId = null;
  $('invite-list').replaceChildren();
  $('invite-status').textContent = '';
}

/** The full address of an invite, to give to someone. */
export function link(invite) {
  return location.origin + invite.url;
}

async function load(id) {
  const { invites } = await api.get(`/api/v1/groups/${api.q(id)}/invites`);
  if (groupId !== id) return;
  render(invites.sort((a, b) => b.expires_at - a.expires_at));
}

async function create(button) {
  const id = groupId;
  if (!id) return;
  await busy(button, 'invite-status', async () => {
    const invite = await api.post(`/api/v1/groups/${api.q(id)}/invites`, {
      expires_in_seconds: Number($('invite-expiry').value),
      max_uses: Number($('invite-uses').value),
    });
    await load(id);
    $('invite-status').textContent = 'Invite link created: copy it and send it to whoever should join.';
    $('invite-list').querySelector(`li[data-code="${CSS.escape(invite.code)}"] button`)?.focus();
  });
}

async function copy(invite, button) {
  await busy(button, 'invite-status', async () => {
    try {
      await navigator.clipboard.writeText(link(invite));
      $('invite-status').textContent = 'Link copied.';
    } catch {
      // No clipboard (an insecure page, or refused): select the link to copy by hand.
      const text = button.closest('li').querySelector('.invite-link');
      getSelection().selectAllChildren(text);
      $('invite-status').textContent = 'Copying was refused: the link is selected, copy it with the keyboard.';
    }
  });
}

async function revoke(invite, button) {
  const id = groupId;
  await busy(button, 'invite-status', async () => {
    await api.del(`/api/v1/groups/${api.q(id)}/invites/${api.q(invite.code)}`);
    await load(id);
    $('invite-status').textContent = 'Invite link revoked: it no longer works.';
    $('invite-form').querySelector('button').focus();
  });
}

function when(ts) {
  return new Date(ts).toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

function render(list) {
  $('invite-list').replaceChildren(
    ...(list.length
      ? list.map((invite, index) => {
        const label = `invite link ${index + 1}`;
        return h('li', { class: 'item invite', dataset: { code: invite.code } },
          h('span', { class: 'invite-link' }, link(invite)),
          h('span', { class: 'hint' }, `${invite.uses} of ${invite.max_uses} uses · expires ${when(invite.expires_at)}`),
          h('button', { type: 'button', 'aria-label': `Copy ${label}`, onclick: (event) => copy(invite, event.currentTarget) }, 'Copy'),
          h('button', { type: 'button', class: 'quiet', 'aria-label': `Revoke ${label}`, onclick: (event) => revoke(invite, event.currentTarget) }, 'Revoke'));
      })
      : [h('li', { class: 'empty' }, 'No invite links yet.')]),
  );
}
