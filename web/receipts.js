// Delivered and read marks on one's own messages: ✓ sent, ✓✓ delivered, ✓✓ highlighted and said
// as "Read" once read (one-to-one); "Read by N" in a group, and who those readers are.

import * as api from './api.js';
import * as store from './store.js';
import * as dialog from './dialog.js';

const { state } = store;
const groupReads = new Map(); // 'group:<id>' -> Map (seq of one's message -> members who read it)
let owner = null; // whose messages the counts are about (a tab may sign in as someone else)

/** Takes in a `receipt` event (or a readers answer, which says the same). */
export function apply(frame) {
  const key = frame.conversation;
  if (key.startsWith('user:')) {
    store.peerReached(key, { delivered: frame.delivered, read: frame.read });
    return;
  }
  if (!frame.read) return;
  if (owner !== state.me?.id) groupReads.clear();
  owner = state.me?.id;
  if (!groupReads.has(key)) groupReads.set(key, new Map());
  const counts = groupReads.get(key);
  counts.set(frame.read, Math.max(counts.get(frame.read) || 0, frame.read_count || 0));
  store.emit('receipts', key);
}

/**
 * How many have read one's group message at `seq`: whoever read a later message of one's own
 * read this one too, so it is the most any receipt at or after it says.
 */
function readCount(key, seq) {
  if (owner !== state.me?.id) return 0;
  let most = 0;
  for (const [at, count] of groupReads.get(key) || []) if (at >= seq) most = Math.max(most, count);
  return most;
}

/** The mark on one's own sent message in `key`: `{ state, symbol, text }`, or null for none. */
export function mark(key, message) {
  if (message.from !== state.me?.id || message.pending || message.kind === 'recalled' || !message.seq) return null;
  if (key.startsWith('group:')) {
    const count = readCount(key, message.seq);
    return count ? { state: 'read', symbol: '', text: `Read by ${count}` } : null;
  }
  // Seqs of one's own inbox, as one's copy of the message has.
  const conversation = state.conversations.get(key);
  if (message.seq <= (conversation?.peerRead || 0)) return { state: 'read', symbol: '✓✓', text: 'Read' };
  if (message.seq <= (conversation?.peerDelivered || 0)) return { state: 'delivered', symbol: '✓✓', text: 'Delivered' };
  return { state: 'sent', symbol: '✓', text: 'Sent' };
}

/** Whether "Seen by…" applies: one's own sent message in a group. */
export function canListReaders(key, message) {
  return key.startsWith('group:') && message.from === state.me?.id && !message.pending
    && message.kind !== 'recalled' && Boolean(message.seq);
}

/** Shows who read one's group message, in a dialog (from the message menu). */
export async function showReaders(key, message) {
  const [, id] = store.split(key);
  const answer = await api.get(`/api/v1/conversations/group/${api.q(id)}/messages/${message.seq}/readers?limit=100`);
  apply({ conversation: key, read: message.seq, read_count: answer.read_count });
  const names = answer.readers.map((user) => user.nickname || user.username);
  if (answer.read_count > names.length) names.push(`and ${answer.read_count - names.length} more`);
  await dialog.showList({
    title: answer.read_count === 1 ? 'Seen by 1 person' : `Seen by ${answer.read_count} people`,
    items: names,
    empty: 'Nobody has read it yet.',
  });
}
