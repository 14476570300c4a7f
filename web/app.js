// natter's browser client: starts the session, wires the socket's events to the views,
// switches between signing in and the signed-in layout, and shows what the URL's fragment names
// (on a phone, the lists and the chat are two screens).

import * as api from './api.js';
import * as store from './store.js';
import * as socket from './socket.js';
import * as account from './account.js';
import * as people from './people.js';
import * as groups from './groups.js';
import * as chats from './chats.js';
import * as chat from './chat.js';
import * as route from './route.js';
import * as attention from './attention.js';
import * as blocks from './blocks.js';
import * as mutes from './mutes.js';
import * as inviteJoin from './invite-join.js';
import * as receipts from './receipts.js';
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
  route.go(route.chatHash(key));
}

/** Which screen a phone shows: the lists, or the content (a chat, the profile). */
function setScreen(screen) {
  $('main-view').dataset.screen = screen;
}

/** Whether the URL may name this chat: a group must be one of the user's. */
function knownChat(key) {
  const [kind, id] = store.split(key);
  return kind === 'user' ? id !== state.me?.id : state.groups.has(id);
}

/** Shows what the URL's fragment asks for (see route.js). */
function show(where) {
  if (!signedIn) return;
  if (where.view === 'invite') {
    chat.close();
    account.closeProfile();
    setScreen('content');
    inviteJoin.open(where.code);
    return;
  }
  inviteJoin.close();
  if (where.view === 'chat' && knownChat(where.key)) {
    account.closeProfile();
    setScreen('content');
    chat.open(where.key);
  } else if (where.view === 'profile') {
    chat.close(); // the chat is out of view: its messages count as unread again
    setScreen('content');
    account.openProfile();
  } else {
    if (where.view === 'chat') {
      route.go('#/', { replace: true }); // a chat that is not (or no longer) there
      return;
    }
    const wasChat = state.open;
    chat.close();
    account.closeProfile();
    setScreen('list');
    // Back from a chat: the keyboard lands on its row in the list, not at the top of the page.
    if (!document.activeElement || document.activeElement === document.body) {
      const row = wasChat && document.querySelector(`#conversation-list li[data-conversation="${CSS.escape(wasChat)}"] button`);
      (row && row.offsetParent ? row : document.querySelector('.tab[aria-current="true"]'))?.focus();
    }
  }
}

/** Keeps the layout the height of what is visible, so an on-screen keyboard does not cover the composer. */
function fitViewport() {
  const height = window.visualViewport?.height;
  if (height) document.documentElement.style.setProperty('--app-height', `${height}px`);
}

/** Reads what events may have been missed while the socket was away. */
async function refreshState() {
  const results = await Promise.allSettled([
    people.loadFriends(),
    people.loadRequests(),
    groups.loadGroups(),
    chats.loadConversations(),
    blocks.load(),
  ]);
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) console.warn('natter: could not load everything', failure.reason);
}

function handleEvent(frame) {
  if (people.handleEvent(frame) || groups.handleEvent(frame) || blocks.handleEvent(frame) || mutes.handleEvent(frame)) return;
  switch (frame.type) {
    case 'typing': {
      const key = frame.to.startsWith('group:') ? frame.to : `user:${frame.from}`;
      // The typist's name first: "someone is typing" says nothing in a group of strangers.
      if (frame.from !== state.me?.id) store.loadProfile(frame.from).then(() => store.typing(key, frame.from));
      break;
    }
    case 'read':
      if (store.readEvent(frame.conversation, frame.seq)) chats.recountSoon();
      break;
    case 'receipt':
      receipts.apply(frame);
      break;
    case 'profile':
      store.applyProfile(frame);
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
  setScreen('list');
  showPanel('chats-panel');
  // The list first, so the sync's messages are counted against it; then the socket.
  await refreshState();
  show(route.parse());
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
  store.emit('conversations');
  chat.close();
  route.clear();
  setScreen('list');
  account.showAuth();
}

function init() {
  account.init({ onSignedIn: signIn });
  people.init({ onOpenChat: openChat });
  // A group that went away: its chat is replaced in the history, so Back does not return to it.
  groups.init({ onOpenChat: openChat, onCloseChat: () => route.go('#/', { replace: true }) });
  chats.init({ onOpenChat: openChat });
  chat.init();
  attention.init({ onOpenChat: openChat });
  mutes.init();
  // A block ends a friendship and any request between the two.
  blocks.init({ onChange: () => Promise.all([people.loadFriends(), people.loadRequests()]).catch(() => {}) });
  // Joined through an invite: its chat takes the invite's place in the history.
  inviteJoin.init({ joined: (key) => route.go(route.chatHash(key), { replace: true }), closed: () => route.back() });
  route.onChange(show);
  window.visualViewport?.addEventListener('resize', fitViewport);
  fitViewport();

  store.on('connection', (value) => {
    const element = $('connection');
    element.dataset.state = value;
    element.textContent = CONNECTION_TEXT[value] || value;
  });
  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => showPanel(tab.dataset.panel));
  }
  $('profile-button').addEventListener('click', () => route.go('#/profile'));
  $('profile-close').addEventListener('click', () => route.back());
  $('back-button').addEventListener('click', () => route.back());
  // The fragment names screens (route.js): the skip link moves the focus without changing it.
  $('skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    const box = $('composer-text');
    if (box.offsetParent) box.focus();
    else document.querySelector('.tab[aria-current="true"]')?.focus();
  });
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
