// The screen an invite link opens (`#/invite/<code>`): which group it joins, whether it is
// private, and a Join button that then opens the group's chat; or, for a link that expired, was
// used up or revoked, a message saying so.

import * as api from './api.js';
import * as groups from './groups.js';
import { $, h, avatar, busy } from './dom.js';

let code = null;
let onJoined = () => {};

/** Wires the screen; `joined(key)` opens the chat of the group joined, `closed()` goes back. */
export function init({ joined, closed }) {
  onJoined = joined;
  $('invite-join').addEventListener('click', (event) => join(event.currentTarget));
  $('invite-close').addEventListener('click', () => closed());
}

/** Shows the invite `inviteCode`, reading what it joins. */
export async function open(inviteCode) {
  code = inviteCode;
  $('chat').hidden = true;
  $('profile-view').hidden = true;
  $('placeholder').hidden = true;
  $('invite-view').hidden = false;
  $('invite-preview').replaceChildren();
  $('invite-message').textContent = 'Reading the invite…';
  $('invite-error').textContent = '';
  $('invite-join').hidden = true;
  $('invite-title').focus();
  try {
    const invite = await api.get(`/api/v1/invites/${api.q(inviteCode)}`);
    if (code !== inviteCode) return;
    const { group } = invite;
    $('invite-preview').replaceChildren(
      avatar(group.name, group.avatar, 'big'),
      h('p', { class: 'invite-group' }, h('strong', {}, group.name)),
      h('p', { class: 'hint' }, group.private ? 'Private group' : 'Public group'));
    $('invite-message').textContent = groups.role(group.id)
      ? 'You are already in this group.'
      : `You are invited to join ${group.name}.`;
    $('invite-join').textContent = groups.role(group.id) ? 'Open group' : 'Join group';
    $('invite-join').hidden = false;
    $('invite-join').dataset.group = group.id;
  } catch (error) {
    if (code !== inviteCode) return;
    $('invite-message').textContent = error.code === 'not_found'
      ? 'This invite link does not work: it has expired, been used up or been revoked. Ask for a new one.'
      : `The invite could not be read: ${error.message}`;
  }
}

/** Hides the screen. */
export function close() {
  code = null;
  $('invite-view').hidden = true;
}

async function join(button) {
  const joining = code;
  await busy(button, 'invite-error', async () => {
    try {
      const { group } = await api.post(`/api/v1/invites/${api.q(joining)}/join`);
      await groups.loadGroups();
      onJoined(`group:${group.id}`);
    } catch (error) {
      if (error.code !== 'not_found') throw error;
      $('invite-join').hidden = true;
      $('invite-message').textContent = 'This invite link no longer works: it has expired, been used up or been revoked. Ask for a new one.';
    }
  });
}
