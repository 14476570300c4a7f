// The group controls in the chat view: the settings of the owner and admins (rename, picture,
// privacy, invite links, members) and the owner's disband with a confirmation step; "Leave
// group" for everyone else. The invite links and the members have their own modules.

import * as api from './api.js';
import * as store from './store.js';
import * as groups from './groups.js';
import * as invites from './invites.js';
import * as groupMembers from './group-members.js';
import { $, avatar, avatarPreview, busy, showError } from './dom.js';

const { state } = store;
let previewUrl = null;

/** Wires the settings' controls, and those of the invite and member sections in them. */
export function init() {
  $('group-settings-button').addEventListener('click', toggle);
  $('group-edit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save(event.submitter);
  });
  $('group-edit-avatar').addEventListener('change', showPreview);
  $('group-edit-private').addEventListener('change', (event) => setPrivate(event.currentTarget));
  $('disband-button').addEventListener('click', () => askDisband(true));
  $('disband-no').addEventListener('click', () => askDisband(false));
  $('disband-confirm').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') askDisband(false);
  });
  $('disband-yes').addEventListener('click', (event) => disband(event.currentTarget));
  $('leave-button').addEventListener('click', (event) => leave(event.currentTarget));
  invites.init();
  groupMembers.init();
}

/** The open group, or null when the chat is not a group's. */
function openGroup() {
  if (!state.open?.startsWith('group:')) return null;
  return store.split(state.open)[1];
}

/** Shows the controls that fit the open conversation and the user's part in it. */
export function renderControls() {
  const id = openGroup();
  const known = id !== null && state.groups.has(id);
  const owner = known && groups.isOwner(id);
  const manager = known && groups.canManage(id);
  $('group-settings-button').hidden = !manager;
  $('leave-button').hidden = !known || owner;
  if (!manager && !$('group-settings').hidden) reset();
  if (manager && !$('group-settings').hidden) {
    renderPreview(id);
    renderPrivacy(id);
  }
}

/** Closes the settings and forgets what was typed in them (another chat was opened). */
export function reset() {
  $('group-settings').hidden = true;
  $('group-settings-button').setAttribute('aria-expanded', 'false');
  $('group-edit-name').value = '';
  $('group-edit-avatar').value = '';
  $('group-edit-status').textContent = '';
  dropPreview();
  askDisband(false, false);
  invites.reset();
  groupMembers.reset();
}

function toggle() {
  const id = openGroup();
  const button = $('group-settings-button');
  if (!id || button.getAttribute('aria-expanded') === 'true') {
    reset();
    return;
  }
  const group = state.groups.get(id);
  button.setAttribute('aria-expanded', 'true');
  $('group-settings').hidden = false;
  $('group-edit-name').value = group?.name || '';
  $('group-edit-avatar').value = '';
  $('group-edit-status').textContent = '';
  dropPreview();
  renderPreview(id);
  renderPrivacy(id);
  // Disbanding is the owner's alone.
  document.querySelector('#group-settings .danger-zone').hidden = !groups.isOwner(id);
  invites.show(id);
  groupMembers.show(id);
  $('group-edit-name').focus();
}

// --- privacy -------------------------------------------------------------------------------

/** Says whether the group is private; only the owner gets the switch. */
function renderPrivacy(id) {
  const group = state.groups.get(id);
  const box = $('group-edit-private');
  box.checked = Boolean(group?.private);
  box.closest('label').hidden = !groups.isOwner(id);
  $('group-private-state').textContent = group?.private
    ? 'This group is private: it is not found by search, and people join by an invite link or by being added.'
    : 'This group is public: anyone can find it by search and join.';
}

async function setPrivate(box) {
  const id = openGroup();
  if (!id) return;
  const wanted = box.checked;
  const done = await busy(box, 'group-edit-status', async () => {
    await groups.update(id, { private: wanted });
    return true;
  });
  if (!done) box.checked = !wanted;
  renderPrivacy(id);
}

// --- the picture ---------------------------------------------------------------------------

function dropPreview() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
}

function renderPreview(id) {
  if (previewUrl) return; // a picture picked and not saved yet stays in view
  const group = state.groups.get(id);
  const slot = $('group-edit-preview');
  const shown = `${id}|${group?.name}|${group?.avatar || ''}`;
  if (slot.dataset.shown === shown && slot.firstChild) return;
  slot.dataset.shown = shown;
  slot.replaceChildren(avatar(group?.name, group?.avatar, 'big'));
}

function showPreview() {
  const [file] = $('group-edit-avatar').files;
  dropPreview();
  const id = openGroup();
  if (!file) {
    if (id) renderPreview(id);
    return;
  }
  previewUrl = URL.createObjectURL(file);
  delete $('group-edit-preview').dataset.shown;
  $('group-edit-preview').replaceChildren(avatarPreview(previewUrl));
}

// --- actions -------------------------------------------------------------------------------

async function save(button) {
  const id = openGroup();
  if (!id) return;
  await busy(button, 'group-edit-status', async () => {
    const group = state.groups.get(id);
    const change = {};
    const name = $('group-edit-name').value.trim();
    if (!name) {
      $('group-edit-status').textContent = 'The group needs a name.';
      $('group-edit-name').focus();
      return;
    }
    if (name !== group?.name) change.name = name;
    const [file] = $('group-edit-avatar').files;
    if (file) change.avatar = (await api.upload(file)).id;
    if (!Object.keys(change).length) {
      $('group-edit-status').textContent = 'Nothing to change.';
      return;
    }
    await groups.update(id, change);
    $('group-edit-avatar').value = '';
    dropPreview();
    renderPreview(id);
    $('group-edit-status').textContent = 'Group saved.';
  });
}

/** Shows or hides the confirmation step of disbanding, moving the focus along. */
function askDisband(asking, moveFocus = true) {
  const id = openGroup();
  const name = id ? state.groups.get(id)?.name || 'this group' : 'this group';
  $('disband-question').textContent = asking
    ? `Disband “${name}”? Every member is removed and nobody can read its messages any more.`
    : '';
  $('disband-confirm').hidden = !asking;
  $('disband-button').setAttribute('aria-expanded', String(asking));
  if (asking) showError('chat-error', '');
  if (!moveFocus) return;
  if (asking) $('disband-no').focus();
  else $('disband-button').focus();
}

async function disband(button) {
  const id = openGroup();
  if (!id) return;
  await busy(button, 'chat-error', () => groups.disband(id));
}

async function leave(button) {
  const id = openGroup();
  if (!id) return;
  await busy(button, 'chat-error', () => groups.leave(id));
}
