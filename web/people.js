// Friends: finding people, friend requests both ways, the friend list with online dots, and
// blocking someone from their entry (blocks.js).

import * as api from './api.js';
import * as store from './store.js';
import * as dialog from './dialog.js';
import * as blocks from './blocks.js';
import { $, h, avatar, presenceDot, busy, notice } from './dom.js';

const { state } = store;
let openChat = () => {};
let lastResults = [];

export function init({ onOpenChat }) {
  openChat = onOpenChat;
  $('user-search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search(event.submitter);
  });
  store.on('friends', render);
  store.on('requests', render);
  store.on('profiles', render);
}

// --- data ----------------------------------------------------------------------------------

export async function loadFriends() {
  const { friends } = await api.get('/api/v1/friends');
  state.friends.clear();
  for (const friend of friends) {
    state.friends.set(friend.user.id, { user: friend.user, online: friend.online });
    state.profiles.set(friend.user.id, friend.user);
  }
  store.emit('friends');
  store.emit('profiles', null);
}

export async function loadRequests() {
  state.requests = await api.get('/api/v1/friends/requests');
  store.emit('requests');
}

/** Friend events pushed over the socket. */
export function handleEvent(frame) {
  switch (frame.type) {
    case 'presence': {
      const friend = state.friends.get(frame.user_id);
      if (friend) {
        friend.online = frame.online;
        store.emit('friends');
      }
      return true;
    }
    case 'friend_request':
      store.loadProfile(frame.from).then(() => notice(`${store.userName(frame.from)} sent you a friend request.`));
      loadRequests().catch(() => {});
      return true;
    case 'friend_accepted':
      store.loadProfile(frame.user_id).then(() => notice(`${store.userName(frame.user_id)} accepted your friend request.`));
      loadFriends().catch(() => {});
      loadRequests().catch(() => {});
      return true;
    case 'friend_removed':
      loadFriends().catch(() => {});
      loadRequests().catch(() => {});
      return true;
    default:
      return false;
  }
}

// --- actions -------------------------------------------------------------------------------

async function search(button) {
  const text = $('user-search').value.trim();
  if (!text) return;
  await busy(button, 'friends-error', async () => {
    const { users } = await api.get(`/api/v1/users/search?q=${api.q(text)}&limit=20`);
    lastResults = users;
    store.rememberProfiles(users);
    render();
    if (!users.length) $('friends-error').textContent = `Nobody found for “${text}”.`;
  });
}

function requestFriend(user, button) {
  const note = $('request-note').value.trim();
  return busy(button, 'friends-error', async () => {
    try {
      await api.post('/api/v1/friends/requests', note ? { user_id: user.id, note } : { user_id: user.id });
    } catch (error) {
      // A block either way: the server's refusal, said in the person's terms.
      if (error.code === 'forbidden') throw new Error(`${user.username} cannot be asked: one of you has blocked the other.`);
      throw error;
    }
    $('request-note').value = ''; // the note went with this request, not the next
    await loadRequests();
  });
}

const act = (button, action) => busy(button, 'friends-error', async () => {
  await action();
  await Promise.all([loadRequests(), loadFriends()]);
});

/** Blocks someone after a confirmation; the lists follow (blocks.js reloads them). */
function block(user, button) {
  return blocks.block(user, button, 'friends-error');
}

/** Ends a friendship once the user confirms it: it cannot be undone from here. */
async function removeFriend(user, button) {
  const name = user.nickname || user.username;
  const sure = await dialog.confirm({
    title: 'Remove friend?',
    text: `Remove ${name} (@${user.username}) from your friends? You will not be able to message each other until one of you sends a new request. Your history stays.`,
    yes: 'Remove friend',
    no: 'Keep friend',
  });
  if (sure) await act(button, () => api.del(`/api/v1/friends/${api.q(user.id)}`));
}

// --- rendering -----------------------------------------------------------------------------

function person(user, ...extra) {
  const name = user ? user.nickname || user.username : 'someone';
  return [
    avatar(name, user?.avatar),
    h('span', { class: 'name' }, name, user ? h('span', { class: 'handle' }, ` @${user.username}`) : null),
    ...extra,
  ];
}

function render() {
  const outgoing = new Set(state.requests.outgoing.map((r) => r.to));
  const incoming = new Set(state.requests.incoming.map((r) => r.from));

  $('user-results').replaceChildren(
    ...lastResults.map((user) => {
      let action;
      if (user.id === state.me?.id) action = h('span', { class: 'tag' }, 'you');
      else if (state.friends.has(user.id)) action = h('span', { class: 'tag' }, 'friend');
      else if (outgoing.has(user.id)) action = h('span', { class: 'tag' }, 'request sent');
      else if (incoming.has(user.id)) action = h('span', { class: 'tag' }, 'asked you');
      else if (blocks.isBlocked(user.id)) action = h('span', { class: 'tag' }, 'blocked');
      else {
        action = h('button', {
          type: 'button',
          'aria-label': `Send a friend request to ${user.username}`,
          onclick: (event) => requestFriend(user, event.currentTarget),
        }, 'Add friend');
      }
      const blockable = user.id !== state.me?.id && !blocks.isBlocked(user.id);
      return h('li', { class: 'item', dataset: { user: user.username } }, ...person(user, action,
        blockable ? blockButton(user) : null));
    }),
  );

  $('incoming-requests').replaceChildren(
    ...emptyOr(state.requests.incoming, 'No requests.', (request) => {
      const user = store.profile(request.from);
      const name = user?.username || 'someone';
      return h('li', { class: 'item', dataset: { user: name } },
        ...person(user,
          request.note ? h('q', { class: 'note' }, request.note) : null,
          h('button', {
            type: 'button',
            'aria-label': `Accept ${name}`,
            onclick: (event) => act(event.currentTarget, () => api.post(`/api/v1/friends/requests/${api.q(request.from)}/accept`)),
          }, 'Accept'),
          h('button', {
            type: 'button',
            'aria-label': `Reject ${name}`,
            onclick: (event) => act(event.currentTarget, () => api.post(`/api/v1/friends/requests/${api.q(request.from)}/reject`)),
          }, 'Reject')));
    }),
  );

  $('outgoing-requests').replaceChildren(
    ...emptyOr(state.requests.outgoing, 'None pending.', (request) => {
      const user = store.profile(request.to);
      const name = user?.username || 'someone';
      return h('li', { class: 'item', dataset: { user: name } },
        ...person(user, h('button', {
          type: 'button',
          'aria-label': `Cancel the request to ${name}`,
          onclick: (event) => act(event.currentTarget, () => api.del(`/api/v1/friends/requests/${api.q(request.to)}`)),
        }, 'Cancel')));
    }),
  );

  const friends = [...state.friends.values()].sort(
    (a, b) => Number(b.online) - Number(a.online) || a.user.username.localeCompare(b.user.username),
  );
  $('friend-list').replaceChildren(
    ...emptyOr(friends, 'No friends yet: find people above.', ({ user, online }) =>
      h('li', { class: 'item friend', dataset: { user: user.username, online: String(online) } },
        presenceDot(online),
        ...person(user,
          h('button', {
            type: 'button',
            'aria-label': `Chat with ${user.username}`,
            onclick: () => openChat(`user:${user.id}`),
          }, 'Chat'),
          h('button', {
            type: 'button',
            class: 'quiet',
            'aria-label': `Remove ${user.username} from friends`,
            onclick: (event) => removeFriend(user, event.currentTarget),
          }, 'Remove'),
          blockButton(user)))),
  );

  const waiting = state.requests.incoming.length;
  $('requests-badge').hidden = waiting === 0;
  $('requests-badge').textContent = String(waiting);
  $('requests-badge').setAttribute('aria-label', `${waiting} friend requests`);
}

function blockButton(user) {
  return h('button', {
    type: 'button',
    class: 'quiet',
    'aria-label': `Block ${user.username}`,
    onclick: (event) => block(user, event.currentTarget),
  }, 'Block');
}

function emptyOr(list, text, render) {
  return list.length ? list.map(render) : [h('li', { class: 'empty' }, text)];
}
