// Message text with its web links made clickable. Only http and https addresses become links, and
// everything is built as DOM nodes with text content: user text is never parsed as HTML.

import { h } from './dom.js';

const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;
// A sentence's closing punctuation right after an address is the sentence's, not the address's.
const TRAILING = /[.,;:!?)\]}]+$/;

/** The URL to link to for `text`, or null when it is not a well-formed http(s) address. */
function safeHref(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Nodes showing `text`, with its http(s) addresses as links that open in a new tab. */
export function linkify(text) {
  const nodes = [];
  let at = 0;
  for (const match of text.matchAll(LINK)) {
    const address = match[0].replace(TRAILING, '');
    const href = safeHref(address);
    if (!href) continue;
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    nodes.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, address));
    at = match.index + address.length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}
