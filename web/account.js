// The account: signing in or registering, and editing the profile (nickname and avatar).

import * as api from './api.js';
import * as store from './store.js';
import { $, avatar, avatarPreview, busy, showError } from './dom.js';

const { state } = store;

export function init({ onSignedIn }) {
  $('auth-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const action = event.submitter?.value === 'register' ? 'register' : 'login';
    const username = $('auth-username').value.trim();
    const password = $('auth-password').value;
    if (!username || !password) {
      showError('auth-error', 'Enter a username and a password.');
      return;
    }
    const buttons = [...event.currentTarget.querySelectorAll('button')];
    buttons.forEach((b) => { b.disabled = true; });
    showError('auth-error', '');
    try {
      const session = action === 'register'
        ? await api.register(username, password)
        : await api.login(username, password);
      $('auth-password').value = '';
      onSignedIn(session);
    } catch (error) {
      showError('auth-error', error.message);
      $('auth-password').focus();
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  $('profile-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save(event.submitter);
  });
  $('profile-avatar-file').addEventListener('change', () => {
    const [file] = $('profile-avatar-file').files;
    if (!file) return;
    $('profile-avatar').replaceChildren(avatarPreview(URL.createObjectURL(file)));
  });
  store.on('me', renderMe);
}

export function showAuth() {
  $('auth-view').hidden = false;
  $('main-view').hidden = true;
  $('me').hidden = true;
  $('auth-username').focus();
}

export function openProfile() {
  const me = state.me;
  $('chat').hidden = true;
  $('placeholder').hidden = true;
  $('profile-view').hidden = false;
  $('profile-nickname').value = me.nickname || '';
  $('profile-avatar-file').value = '';
  $('profile-status').textContent = '';
  $('profile-avatar').replaceChildren(avatar(me.nickname || me.username, me.avatar, 'big'));
  $('profile-nickname').focus();
}

export function closeProfile() {
  $('profile-view').hidden = true;
  $('placeholder').hidden = state.open !== null;
  $('chat').hidden = state.open === null;
}

async function save(button) {
  await busy(button, 'profile-status', async () => {
    const change = {};
    const nickname = $('profile-nickname').value.trim();
    if (nickname && nickname !== state.me.nickname) change.nickname = nickname;
    const [file] = $('profile-avatar-file').files;
    if (file) change.avatar = (await api.upload(file)).id;
    if (!Object.keys(change).length) {
      $('profile-status').textContent = 'Nothing to change.';
      return;
    }
    const me = await api.patch('/api/v1/me', change);
    api.updateSessionUser(me);
    store.setMe(me);
    $('profile-avatar-file').value = '';
    $('profile-status').textContent = 'Profile saved.';
  });
}

function renderMe(me) {
  $('me-name').textContent = me.nickname && me.nickname !== me.username ? `${me.nickname} (@${me.username})` : `@${me.username}`;
  $('me-avatar').replaceChildren(avatar(me.nickname || me.username, me.avatar));
}
