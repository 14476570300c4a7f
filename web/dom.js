// Small DOM helpers. Text always goes in through text nodes, never as HTML.

import * as api from './api.js';

export const $ = (id) => document.getElementById(id);

/** `h('button', { class: 'x', onclick }, 'text', child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An avatar: the image when there is one (fetched with the token), else the initial. */
export function avatar(name, uploadId, size = '') {
  const element = h('span', { class: `avatar ${size}`, 'aria-hidden': 'true' }, (name || '?').slice(0, 1).toUpperCase());
  if (uploadId) {
    api.mediaUrl(uploadId, true).then((url) => {
      if (!url) return;
      element.textContent = '';
      element.append(h('img', { src: url, alt: '' }));
    });
  }
  return element;
}

/** A big avatar showing a picture chosen but not uploaded yet (`url`: an object URL). */
export function avatarPreview(url) {
  return h('span', { class: 'avatar big', 'aria-hidden': 'true' }, h('img', { src: url, alt: '' }));
}

export function presenceDot(online) {
  return h('span', {
    class: `dot ${online ? 'on' : 'off'}`,
    role: 'img',
    'aria-label': online ? 'online' : 'offline',
    title: online ? 'online' : 'offline',
  });
}

/** The clock time of `ts` (the day is shown by the chat's day separators). */
export function time(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** "Today", "Yesterday", or the date of `ts` (with the year when it is not this year's). */
export function dayLabel(ts) {
  const date = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return 'Today';
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  const options = { weekday: 'long', day: 'numeric', month: 'long' };
  if (date.getFullYear() !== today.getFullYear()) options.year = 'numeric';
  return date.toLocaleDateString([], options);
}

/** Shows `message` (or clears it) in an error line. */
export function showError(id, message) {
  $(id).textContent = message || '';
}

const NOTICE_MS = 5000;

/**
 * A short-lived notice at the corner: it goes by itself after about five seconds, or at once
 * with its Dismiss button (or Escape). While the keyboard focus is in it, it stays.
 */
export function notice(text) {
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    if (!item.isConnected) return;
    const hadFocus = item.contains(document.activeElement);
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    if (hadFocus) next?.querySelector('button')?.focus();
  };
  const wait = () => {
    clearTimeout(timer);
    timer = setTimeout(dismiss, NOTICE_MS);
  };
  const item = h('div', { class: 'notice' },
    h('p', { class: 'notice-text' }, text),
    h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss notice', title: 'Dismiss', onclick: dismiss }, '×'));
  item.addEventListener('focusin', () => clearTimeout(timer));
  item.addEventListener('focusout', (event) => {
    if (!item.contains(event.relatedTarget)) wait();
  });
  item.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') dismiss();
  });
  $('notices').append(item);
  wait();
  return item;
}

/** Runs `action` with the button disabled, showing a failure in the error line `errorId`. */
export async function busy(button, errorId, action) {
  if (button) button.disabled = true;
  if (errorId) showError(errorId, '');
  try {
    return await action();
  } catch (error) {
    if (errorId) showError(errorId, error.message);
    else notice(error.message);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Moves the focus among `items` with the up and down arrows (left and right too when
 * `across`), Home and End, wrapping at the ends; true when `event` was one of those keys. */
export function moveFocus(event, items, across = false) {
  const at = items.indexOf(document.activeElement);
  const forward = (at + 1) % items.length;
  const backward = (at - 1 + items.length) % items.length;
  const keys = { ArrowDown: forward, ArrowUp: backward, Home: 0, End: items.length - 1 };
  if (across) Object.assign(keys, { ArrowRight: forward, ArrowLeft: backward });
  const next = keys[event.key];
  if (next === undefined) return false;
  event.preventDefault();
  items[next].focus();
  return true;
}
