// The group controls in the chat view: the owner's settings (rename, picture, disband with a
// confirmation step) and "Leave group" for the other members. Removing members is in the
// member list (chat.js).

import * as api from './api.js';
import * as store from './store.js';
import * as groups from './groups.js';
import { $, avatar, avatarPreview, busy, showError } from './dom.js';

const { state } = store;
let previewUrl = null;

export function init() {
  $('group-settings-button').addEventListener('click', toggle);
  $('group-edit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save(event.submitter);
  });
  $('group-edit-avatar').addEventListener('change', showPreview);
  $('disband-button').addEventListener('click', () => askDisband(true));
  $('disband-no').addEventListener('click', () => askDisband(false));
  $('disband-confirm').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') askDisband(false);
  });
  $('disband-yes').addEventListener('click', (event) => disband(event.currentTarget));
  $('leave-button').addEventListener('click', (event) => leave(event.currentTarget));
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
  $('group-settings-button').hidden = !owner;
  $('leave-button').hidden = !known || owner;
  if (!owner && !$('group-settings').hidden) reset();
  if (owner && !$('group-settings').hidden) renderPreview(id);
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
  $('group-edit-name').focus();
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
