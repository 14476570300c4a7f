// What the composer is doing besides writing a new message: answering one (the quoted message
// shows above the box, with × to drop it) or editing one's own (the box holds its text; Escape
// or × cancels and brings back what was being written before).

import * as store from './store.js';
import { $, h } from './dom.js';

let mode = null; // { kind: 'reply' | 'edit', key, message, stash }
let bar = null;

/** The quote of a message: its first 100 characters, or empty for an image (as the server keeps it). */
export function snippet(message) {
  return message.kind === 'text' ? message.body.slice(0, 100) : '';
}

/** Puts the bar above the composer and lets Escape in the box cancel the mode. */
export function init() {
  bar = h('div', { id: 'composer-mode', class: 'composer-mode', role: 'status', hidden: true });
  $('composer').before(bar);
  $('composer-text').addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && mode) {
      event.preventDefault();
      cancel();
    }
  });
}

/** The mode in force (`{ kind, key, message }`), or null. */
export function current() {
  return mode;
}

/** Answers `message` in chat `key`: the next message sent quotes it. */
export function reply(key, message) {
  leave();
  mode = { kind: 'reply', key, message };
  show(`Replying to ${message.from === store.state.me?.id ? 'yourself' : store.userName(message.from)}`, snippet(message) || 'Photo', 'Cancel the reply');
  $('composer-text').focus();
}

/** Edits one's own `message` in chat `key` in the composer; what was typed before is kept aside. */
export function edit(key, message) {
  leave();
  const box = $('composer-text');
  mode = { kind: 'edit', key, message, stash: box.value };
  box.value = message.body;
  show('Editing your message', message.body.slice(0, 100), 'Cancel editing');
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

/** Ends the mode (after sending or saving, or cancelled); an edit gives the box back its text. */
export function cancel() {
  leave();
  $('composer-text').focus();
}

/** Ends the mode without moving the focus (switching chats). */
export function leave() {
  if (mode?.kind === 'edit') $('composer-text').value = mode.stash;
  mode = null;
  if (bar) {
    bar.hidden = true;
    bar.replaceChildren();
  }
}

function show(title, text, cancelLabel) {
  bar.replaceChildren(
    h('div', { class: 'quote-text' },
      h('span', { class: 'quote-author' }, title),
      h('span', { class: 'quote-snippet' }, text)),
    h('button', { type: 'button', class: 'quiet close', 'aria-label': cancelLabel, title: cancelLabel, onclick: cancel }, '×'));
  bar.hidden = false;
}
