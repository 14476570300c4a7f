// Unsent text per conversation, in localStorage under the signed-in user, so a draft survives
// switching chats and reloading, and another account on the same browser does not see it.

import { state } from './store.js';

function storageKey() {
  return `natter.drafts.${state.me?.id}`;
}

function all() {
  try {
    return JSON.parse(localStorage.getItem(storageKey())) || {};
  } catch {
    return {};
  }
}

/** The draft of conversation `key`, or ''. */
export function load(key) {
  return (state.me && all()[key]) || '';
}

/** Keeps `text` as the draft of `key`; blank text drops the draft. */
export function save(key, text) {
  if (!state.me) return;
  const drafts = all();
  if (text.trim()) drafts[key] = text;
  else delete drafts[key];
  localStorage.setItem(storageKey(), JSON.stringify(drafts));
}
