// Shared helpers for the browser tests: a Chromium launch with a fresh profile, users signed up
// through the page, friendships made through the page, screenshots, and a small PNG.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE = process.env.NATTER_URL || 'http://127.0.0.1:18580';
export const ARTIFACTS = process.env.NATTER_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'natter-artifacts-'));
export const WAIT = 30_000; // generous: a loaded machine is slow, and no test measures time
export const PASSWORD = 'purple-ferret-42';

fs.mkdirSync(ARTIFACTS, { recursive: true });

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
/** The two sizes the client is checked at: `phone` also has touch. */
export const VIEWPORTS = [
  { name: 'desktop', options: { viewport: DESKTOP } },
  { name: 'phone', options: { viewport: PHONE, isMobile: true, hasTouch: true } },
];

const WEB = fileURLToPath(new URL('../../web/', import.meta.url));
// A prebuilt binary (NATTER_BIN, not built by the runner) carries the client it was compiled
// with, which may be older than web/: the tests then serve web/ from disk so they test this tree.
const WEB_FROM_DISK = Boolean(process.env.NATTER_BIN) && process.env.NATTER_WEB_FROM_DISK !== '0';
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** Answers `/` and `/web/<file>` from the web/ folder on disk. */
async function serveWebFromDisk(context) {
  const answer = (route, name) => {
    const file = path.join(WEB, name);
    if (path.dirname(file) !== path.resolve(WEB) || !fs.existsSync(file)) return route.fulfill({ status: 404 });
    return route.fulfill({
      status: 200,
      headers: { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-cache' },
      body: fs.readFileSync(file),
    });
  };
  await context.route((url) => url.origin === new URL(BASE).origin && url.pathname === '/', (route) => answer(route, 'index.html'));
  await context.route((url) => url.origin === new URL(BASE).origin && url.pathname.startsWith('/web/'),
    (route) => answer(route, decodeURIComponent(new URL(route.request().url()).pathname.slice('/web/'.length))));
}

/** A browser context (desktop-sized unless `options` say otherwise) that loads this tree's client. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, ...options });
  if (WEB_FROM_DISK) await serveWebFromDisk(context);
  return context;
}


/** Chromium from Debian, headless, in a fresh temporary profile. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // A page answered from disk counts as from the public internet, which may not reach a
      // local WebSocket: the tests serve web/ that way for a prebuilt binary (below).
      ...(WEB_FROM_DISK ? ['--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests'] : []),
    ],
  });
}

let counter = 0;
/** A username no other run or test file uses. */
export function uniqueName(prefix) {
  counter += 1;
  const stamp = `${Date.now().toString(36)}${process.pid.toString(36)}${counter}`;
  return `${prefix}-${stamp}`.slice(0, 32);
}

/** Keeps the page's console errors visible in the test output. */
function watch(page, label) {
  page.on('pageerror', (error) => console.error(`[${label}] page error:`, error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') console.error(`[${label}] console:`, message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) console.error(`[${label}] ${response.status()} ${response.url()}`);
  });
}

export async function openPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  watch(page, label);
  await page.goto(BASE + '/');
  return page;
}

/** A new browser context with a user registered through the form, shown signed in and online. */
export async function newUser(browser, prefix, options = { viewport: { width: 1200, height: 800 } }) {
  const context = await newContext(browser, options);
  const username = uniqueName(prefix);
  const page = await openPage(context, username);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Register' }).click();
  await waitOnline(page);
  return { context, page, username };
}

export async function waitOnline(page) {
  await page.locator('#connection[data-state="online"]').waitFor();
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Shows a section of the lists; on a phone, where a chat or the profile hides them, goes back first. */
export async function showPanel(page, name) {
  const tabs = page.getByRole('navigation', { name: 'Sections' });
  // Closing the profile goes back to where it was opened from, which may be a chat.
  for (let step = 0; step < 3 && !(await tabs.isVisible()); step += 1) {
    if (await page.locator('#back-button').isVisible()) await page.locator('#back-button').click();
    else await page.getByRole('button', { name: 'Close' }).click();
    await page.waitForTimeout(50);
  }
  await tabs.getByRole('button', { name }).click();
}

/** `a` finds `b` by searching, sends a request with a note, and `b` accepts it: both see a friend. */
export async function befriend(a, b, note = '') {
  await showPanel(a.page, 'Friends');
  await a.page.getByLabel('Find people').fill(b.username);
  if (note) await a.page.getByLabel('Note with friend requests (optional)').fill(note);
  await a.page.locator('#user-search-form').getByRole('button', { name: 'Search' }).click();
  await a.page.getByRole('button', { name: `Send a friend request to ${b.username}` }).click();
  await a.page.locator(`#outgoing-requests li[data-user="${b.username}"]`).waitFor();

  await showPanel(b.page, 'Friends');
  const incoming = b.page.locator(`#incoming-requests li[data-user="${a.username}"]`);
  await incoming.waitFor();
  await b.page.getByRole('button', { name: `Accept ${a.username}` }).click();
  await b.page.locator(`#friend-list li[data-user="${a.username}"]`).waitFor();
  await a.page.locator(`#friend-list li[data-user="${b.username}"]`).waitFor();
}

/** Opens the chat with a friend from the friend list. */
export async function openChatWith(page, username) {
  await showPanel(page, 'Friends');
  await page.getByRole('button', { name: `Chat with ${username}` }).click();
  await page.locator('#chat').waitFor();
}

/** `user` creates a group named `name`; its chat opens. */
export async function createGroup(user, name) {
  await showPanel(user.page, 'Groups');
  await user.page.getByLabel('New group name').fill(name);
  await user.page.getByRole('button', { name: 'Create group' }).click();
  await user.page.locator('#chat-title', { hasText: name }).waitFor();
}

/** `user` finds the group by its name and joins it; the chat opens. */
export async function joinGroup(user, name) {
  await showPanel(user.page, 'Groups');
  await user.page.getByLabel('Find groups').fill(name);
  await user.page.locator('#group-search-form').getByRole('button', { name: 'Search' }).click();
  await user.page.getByRole('button', { name: `Join ${name}` }).click();
  await user.page.locator('#chat-title', { hasText: name }).waitFor();
}

/** Opens one of the user's groups from the group list. */
export async function openGroup(page, name) {
  await showPanel(page, 'Groups');
  await page.getByRole('button', { name: `Open ${name}` }).click();
  await page.locator('#chat-title', { hasText: name }).waitFor();
}

/** The user's id, from the page's state. */
export function userId(page) {
  return page.evaluate(() => window.natter.state.me.id);
}

export async function sendText(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** The texts of the message bodies shown in the open chat. */
export function bodies(page) {
  return page.locator('#message-list .msg .body').allTextContents();
}

/** The message bubble in the open chat whose body has this text. */
export function bubble(page, text) {
  return page.locator('#message-list li.msg', { has: page.locator('.body', { hasText: text }) });
}

/** Waits until the open chat shows a message with exactly this text. */
export async function waitForMessage(page, text) {
  await page.locator('#message-list .msg .body', { hasText: text }).first().waitFor();
}

/** Polls `check` until it is true (for counts and sets of things, where locators do not fit). */
export async function eventually(check, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await check();
      if (last === true) return;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

// --- a small PNG, made by hand ---------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buffer) {
  let c = 0xffffffff;
  for (const byte of buffer) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A `size`×`size` RGB PNG: a diagonal gradient in the given colour. */
export function makePng(size = 48, [r, g, b] = [220, 60, 40]) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  const rows = [];
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x += 1) {
      const shade = (x + y) / (2 * size);
      row[1 + x * 3] = Math.round(r * shade);
      row[2 + x * 3] = Math.round(g * shade);
      row[3 + x * 3] = Math.round(b * shade);
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// --- accessibility ---------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');

/** axe-core's violations of impact "serious" or "critical" on the page as it is now, described. */
export async function seriousViolations(page) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) })));
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.join(', ')}`);
}
