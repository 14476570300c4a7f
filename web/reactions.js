// Reactions: a picker of six common emoji (opened from the message menu) and the chips under a
// message, "👍 2", one's own pressed. A chip toggles one's own reaction; its label names who.

import * as api from './api.js';
import * as store from './store.js';
import { h, moveFocus, notice } from './dom.js';

const { state } = store;
export const COMMON = ['👍', '❤️', '😂', '😮', '😢', '🎉'];
let picker = null;
let back = null; // where the focus goes when the picker closes

/** Who reacted with one emoji, in words: "Ada, Ben and you" (history lists the first 20). */
function who(reaction) {
  const me = state.me?.id;
  const names = reaction.users.filter((id) => id !== me).map((id) => store.userName(id));
  if (reaction.mine || reaction.users.includes(me)) names.push('you');
  const more = reaction.count - names.length;
  if (more > 0) names.push(`${more} more`);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names.at(-1)}` : names[0] || '';
}

/** A text that changes whenever the chips would look or read differently (chat.js redraws on it). */
export function signature(message) {
  return (message.reactions || []).map((r) => `${r.emoji}${r.count}${r.mine ? '*' : ''}:${who(r)}`).join(',');
}

/** The chips under a message, or null when it has no reactions. */
export function chips(message) {
  const list = message.reactions || [];
  if (!list.length) return null;
  return h('div', { class: 'reactions' },
    ...list.map((reaction) => {
      const label = `${reaction.emoji} ${reaction.count}, from ${who(reaction)}`;
      return h('button', {
        type: 'button',
        class: 'chip',
        'aria-pressed': String(Boolean(reaction.mine)),
        'aria-label': label,
        title: label,
        dataset: { focus: `chip:${reaction.emoji}` },
        onclick: () => toggle(message, reaction.emoji, !reaction.mine),
      }, `${reaction.emoji} ${reaction.count}`);
    }));
}

/** Adds or takes back one's `emoji` on `message`; shown at once, and the event later changes nothing. */
export async function toggle(message, emoji, on) {
  const path = `/api/v1/messages/${api.q(message.id)}/reactions`;
  try {
    if (on) await api.post(path, { emoji });
    else await api.del(`${path}/${encodeURIComponent(emoji)}`);
    store.applyEvent({ kind: on ? 'reaction' : 'reaction_removed', ref: message.id, from: state.me.id, body: emoji });
  } catch (error) {
    notice(`Could not react: ${error.message}`);
  }
}

/** Opens the picker for `message` beside `anchor` (the message menu's button), focused on its first emoji. */
export function openPicker(message, anchor) {
  closePicker(false);
  const row = anchor.closest('li.msg');
  const list = row?.parentElement;
  // The message may be redrawn while the picker is open: then the focus goes to its new element.
  back = () => (anchor.isConnected ? anchor : list?.querySelector(`li.msg[data-key="${CSS.escape(row.dataset.key)}"]`));
  picker = h('div', { class: 'picker', role: 'group', 'aria-label': 'Pick a reaction' },
    ...COMMON.map((emoji) => h('button', {
      type: 'button',
      'aria-label': `React with ${emoji}`,
      title: `React with ${emoji}`,
      onclick: () => {
        closePicker(true);
        toggle(message, emoji, true);
      },
    }, emoji)));
  picker.addEventListener('keydown', pickerKeys);
  document.body.append(picker);
  // Fixed beside the button, above it when there is room, and inside the window.
  const at = anchor.getBoundingClientRect();
  const size = picker.getBoundingClientRect();
  const top = at.top - size.height - 6 >= 0 ? at.top - size.height - 6 : at.bottom + 6;
  const left = Math.min(Math.max(4, at.left + at.width / 2 - size.width / 2), window.innerWidth - size.width - 4);
  picker.style.top = `${top}px`;
  picker.style.left = `${left}px`;
  picker.querySelector('button').focus();
  document.addEventListener('pointerdown', outside, true);
}

/** Closes the picker; `refocus` puts the focus back on what opened it. */
export function closePicker(refocus) {
  if (!picker) return;
  picker.remove();
  picker = null;
  document.removeEventListener('pointerdown', outside, true);
  if (refocus) back?.()?.focus();
}

function outside(event) {
  if (picker && !picker.contains(event.target)) closePicker(false);
}

/** Left and right (Home, End) move between the emoji; Escape closes; Tab leaves. */
function pickerKeys(event) {
  const items = [...picker.querySelectorAll('button')];
  if (moveFocus(event, items, true)) return;
  if (event.key === 'Escape' || event.key === 'Tab') {
    event.preventDefault();
    closePicker(true);
  }
}
