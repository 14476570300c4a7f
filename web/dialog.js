// Small modals built on <dialog> (a confirmation, a list): they trap the focus, Escape answers "no", and
// the focus goes back where it was. Used instead of window.confirm, which cannot be styled or
// labelled and blocks the page.

import { h } from './dom.js';

let counter = 0;

/** Asks `text` under `title`; resolves true when the `yes` button is chosen, false otherwise. */
export function confirm({ title, text, yes, no = 'Cancel' }) {
  counter += 1;
  const titleId = `dialog-title-${counter}`;
  const textId = `dialog-text-${counter}`;
  const keep = h('button', { type: 'submit', value: 'no', class: 'quiet' }, no);
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-describedby': textId },
    h('form', { method: 'dialog' },
      h('h2', { id: titleId }, title),
      h('p', { id: textId }, text),
      h('div', { class: 'row' }, keep, h('button', { type: 'submit', value: 'yes', class: 'danger' }, yes))));
  // The safe answer first.
  return show(dialog, keep).then((answer) => answer === 'yes');
}

/** Shows `items` (strings) in a list under `title`, with `empty` when there are none; resolves when closed. */
export function showList({ title, items, empty = 'Nobody yet.' }) {
  counter += 1;
  const titleId = `dialog-title-${counter}`;
  const close = h('button', { type: 'submit', value: 'close' }, 'Close');
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
    h('form', { method: 'dialog' },
      h('h2', { id: titleId }, title),
      items.length ? h('ul', { class: 'dialog-list' }, ...items.map((item) => h('li', {}, item))) : h('p', {}, empty),
      h('div', { class: 'row' }, close)));
  return show(dialog, close).then(() => undefined);
}

/** Opens `dialog` modally with `focus` focused; resolves with its return value once closed,
 * when it is gone and the focus is back where it was. */
function show(dialog, focus) {
  const back = document.activeElement;
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (back?.isConnected) back.focus();
      resolve(dialog.returnValue);
    });
    dialog.showModal();
    focus.focus();
  });
}
