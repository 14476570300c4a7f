// What can be done with one message. A single "More" button sits on the message under the
// pointer or with the keyboard focus and opens a menu of the actions that apply to it. Messages
// take the focus one at a time (the arrow keys move it), so a long chat is two Tab stops, not
// two per message (the links, quotes and reaction chips inside a message are in the Tab order
// only while it is the current one). Actions register themselves (chat.js adds reply, react,
// edit, seen by and recall).

import { h, moveFocus } from './dom.js';

const actions = [];
let list = null;
let messageOf = () => null;
let more = null;
let menu = null;
let target = null; // the message element the More button is on
let onClosed = () => {};

/** Adds an action to the menu: `{ label, applies(message), run(message, moreButton) }`. */
export function addAction(action) {
  actions.push(action);
}

function applicable(element) {
  const message = element && messageOf(element);
  return message ? actions.filter((action) => action.applies(message)) : [];
}

/**
 * Wires the menu to the message list; `lookup(element)` answers the message an element shows,
 * and `closed()` runs after a menu closes (a message kept while its menu was open can be redrawn).
 */
export function init(listElement, lookup, closed = () => {}) {
  list = listElement;
  messageOf = lookup;
  onClosed = closed;
  more = h('button', {
    type: 'button', class: 'more', title: 'More actions', 'aria-label': 'More actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
  }, '⋯');
  more.addEventListener('click', () => (menu ? closeMenu(true) : openMenu()));
  list.addEventListener('mouseover', (event) => place(event.target.closest('li.msg')));
  list.addEventListener('mouseleave', () => {
    if (!menu && target && !target.contains(document.activeElement)) detach();
  });
  list.addEventListener('focusin', (event) => {
    const element = event.target.closest('li.msg');
    if (!element) return;
    rove(element);
    place(element);
  });
  list.addEventListener('keydown', messageKeys);
  document.addEventListener('pointerdown', (event) => {
    if (menu && !menu.contains(event.target) && !more.contains(event.target)) closeMenu(false);
  });
}

/** After the list is rendered: one message in the Tab order, and the button only where it applies. */
export function refresh() {
  const messages = [...list.querySelectorAll('li.msg')];
  const focusedInside = list.contains(document.activeElement);
  let current = focusedInside ? list.querySelector('li.msg[tabindex="0"]') : null;
  if (!current) current = messages.at(-1); // out of the list, the way in is the newest message
  for (const element of messages) setCurrent(element, element === current);

  if (target && !target.isConnected) {
    // The message was drawn anew (recalled, sent): follow it, and keep the focus on it.
    const hadFocus = !document.activeElement || document.activeElement === document.body;
    const again = list.querySelector(`li.msg[data-key="${CSS.escape(target.dataset.key)}"]`);
    detach();
    if (again && hadFocus) again.focus();
  } else if (target && !applicable(target).length) {
    detach();
  }
}

/** Whether `element` has the open menu: redrawing it now would close the menu under the reader. */
export function isOpenOn(element) {
  return Boolean(menu) && element === target;
}

function rove(element) {
  for (const other of list.querySelectorAll('li.msg[tabindex="0"]')) if (other !== element) setCurrent(other, false);
  setCurrent(element, true);
}

/** Puts a message, and the controls inside it, in the Tab order or takes them out. */
function setCurrent(element, current) {
  element.tabIndex = current ? 0 : -1;
  for (const control of element.querySelectorAll('a[href], button:not(.more):not([role="menuitem"])')) control.tabIndex = current ? 0 : -1;
}

function place(element) {
  if (menu || !element || element === target) return;
  if (!applicable(element).length) {
    detach();
    return;
  }
  target = element;
  element.prepend(more); // first, so Tab from the message reaches it before a quote or a chip
}

function detach() {
  if (menu) closeMenu(false);
  more.remove();
  target = null;
}

/** Up and down (and Home, End) move between messages, stopping at the first and the last. */
function messageKeys(event) {
  if (menu && menu.contains(event.target)) return;
  if (!event.target.matches('li.msg')) return;
  const messages = [...list.querySelectorAll('li.msg')];
  const at = messages.indexOf(event.target);
  const next = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: messages.length - 1 }[event.key];
  if (next === undefined || !messages[next]) return;
  event.preventDefault();
  messages[next].focus();
}

function openMenu() {
  const message = target && messageOf(target);
  const items = applicable(target);
  if (!message || !items.length) return;
  menu = h('div', { class: 'menu', role: 'menu', 'aria-label': 'Message actions' },
    ...items.map((action) => h('button', {
      type: 'button',
      role: 'menuitem',
      tabindex: '-1',
      onclick: () => {
        closeMenu(true);
        action.run(message, more);
      },
    }, action.label)));
  menu.addEventListener('keydown', menuKeys);
  target.append(menu);
  // Near the bottom of the scrolled list (the newest messages), open upwards so it is not cut off.
  const view = list.closest('.messages')?.getBoundingClientRect();
  if (view && menu.getBoundingClientRect().bottom > view.bottom) menu.classList.add('up');
  more.setAttribute('aria-expanded', 'true');
  menu.querySelector('[role="menuitem"]').focus();
}

function closeMenu(focusButton) {
  if (!menu) return;
  menu.remove();
  menu = null;
  more.setAttribute('aria-expanded', 'false');
  if (focusButton && more.isConnected) more.focus();
  setTimeout(onClosed); // after the chosen action has run, with the button still in place
}

function menuKeys(event) {
  const items = [...menu.querySelectorAll('[role="menuitem"]')];
  if (moveFocus(event, items)) return;
  if (event.key === 'Escape') {
    event.preventDefault();
    closeMenu(true);
  } else if (event.key === 'Tab') {
    closeMenu(false);
  }
}
