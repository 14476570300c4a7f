// natter's browser client: starts the session, wires the socket's events to the views, and
// switches between signing in and the signed-in layout.

import * as api from './api.js';
import * as store from './store.js';
import * as socket from './socket.js';
import * as account from './account.js';
import * as people from './people.js';
import * as groups from './groups.js';
import * as chats from './chats.js';
import * as chat from './chat.js';
import { $, notice } from './dom.js';

const { state } = store;

const CONNECTION_TEXT = {
  offline: 'Offline',
  connecting: 'Connecting…',
  online: 'Online',
  reconnecting: 'Reconnecting…',
};

function showPanel(id) {
  for (const tab of document.querySelectorAll('.tab')) {
    const current = tab.dataset.panel === id;
    tab.setAttribute('aria-current', current ? 'true' : 'false');
    $(tab.dataset.panel).hidden = !current;
  }
}

function openChat(key) {
  account.closeProfile();
  chat.open(key);
}

/** Reads what events may have been missed while the socket was away. */
async function refreshState() {
  const results = await Promise.allSettled([
    people.loadFriends(),
    people.loadRequests(),
    groups.loadGroups(),
    chats.loadConversations(),
  ]);
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) console.warn('natter: could not load everything', failure.reason);
}

function handleEvent(frame) {
  if (people.handleEvent(frame) || groups.handleEvent(frame)) return;
  switch (frame.type) {
    case 'typing': {
      const key = frame.to.startsWith('group:') ? frame.to : `user:${frame.from}`;
      if (frame.from !== state.me?.id) store.typing(key, frame.from);
      break;
    }
    case 'read':
      if (store.readEvent(frame.conversation, frame.seq)) chats.recountSoon();
      break;
    case 'notice':
      notice(frame.body);
      break;
    case 'error':
      if (frame.code !== 'forbidden' || !String(frame.message).includes('typing')) {
        console.warn('natter: the server refused a frame', frame);
      }
      break;
    default:
      break;
  }
}

let signedIn = false;
let synced = 0;

async function signIn(session) {
  socket.stop();
  signedIn = true;
  synced = 0;
  store.reset(session.user);
  store.setMe(session.user);
  $('auth-view').hidden = true;
  $('main-view').hidden = false;
  $('me').hidden = false;
  chat.close();
  account.closeProfile();
  showPanel('chats-panel');
  // The list first, so the sync's messages are counted against it; then the socket.
  await refreshState();
  api.get('/api/v1/me').then((me) => store.setMe(me)).catch(() => {});
  socket.start({
    onEvent: handleEvent,
    onSynced: () => {
      synced += 1;
      if (synced > 1) refreshState();
    },
  });
}

function signOut() {
  signedIn = false;
  socket.stop();
  api.clearSession();
  store.reset(null);
  chat.close();
  account.showAuth();
}

function init() {
  account.init({ onSignedIn: signIn });
  people.init({ onOpenChat: openChat });
  groups.init({ onOpenChat: openChat, onCloseChat: () => chat.close() });
  chats.init({ onOpenChat: openChat });
  chat.init();

  store.on('connection', (value) => {
    const element = $('connection');
    element.dataset.state = value;
    element.textContent = CONNECTION_TEXT[value] || value;
  });
  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => showPanel(tab.dataset.panel));
  }
  $('profile-button').addEventListener('click', () => {
    chat.close(); // the chat is out of view: its messages count as unread again
    account.openProfile();
  });
  $('profile-close').addEventListener('click', account.closeProfile);
  $('logout-button').addEventListener('click', signOut);

  // Another tab signed in, refreshed the token or signed out.
  api.onSessionChange((session) => {
    if (!session && signedIn) signOut();
    else if (session && !signedIn) signIn(session);
    else if (session && state.me && session.user.id !== state.me.id) signIn(session);
    else if (session && state.me && session.user !== state.me) store.setMe(session.user);
  });

  api.onSessionEnded(() => {
    if (!signedIn) return;
    signOut();
    $('auth-error').textContent = 'Your session has ended: please sign in again.';
  });

  $('loading').hidden = true;
  const session = api.loadSession();
  if (session) signIn(session);
  else account.showAuth();
}

init();

// A handle for tests and debugging in the console.
window.natter = { state, socket };
