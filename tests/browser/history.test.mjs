// History: a long conversation loads its newest page first and further back as the reader
// scrolls to the top, in order and without repeats.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newContext, newUser, befriend, shot, showPanel, eventually, bodies, BASE,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')).access_token);
}

test('history loads further back when scrolled to the top', async () => {
  const ivy = await newUser(browser, 'ivy');
  const jon = await newUser(browser, 'jon');
  await befriend(ivy, jon);

  // ivy sends 75 numbered messages over REST (the server's own send path).
  const token = await tokenOf(ivy.page);
  const jonId = await ivy.page.evaluate(
    (name) => [...window.natter.state.friends.values()].find((f) => f.user.username === name).user.id,
    jon.username,
  );
  const total = 75;
  for (let i = 1; i <= total; i += 1) {
    const response = await fetch(`${BASE}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cid: `history-${i}`, to: `user:${jonId}`, kind: 'text', body: `number ${i}` }),
    });
    assert.equal(response.status, 201);
  }

  // jon's tab receives them all live and acks them, without opening the chat.
  const jonSelf = await jon.page.evaluate(() => window.natter.state.me.id);
  await eventually(
    () => jon.page.evaluate((object) => window.natter.socket.storedCursor(object) >= 75, `user:${jonSelf}`),
    'jon\'s tab to ack everything',
  );
  await jon.context.close();

  // jon comes back in a fresh browser context: it holds nothing and reads history page by page.
  const context = await newContext(browser, { viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  await page.goto(`${BASE}/`);
  await page.getByLabel('Username').fill(jon.username);
  await page.getByLabel('Password').fill('purple-ferret-42');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#connection[data-state="online"]').waitFor();
  await showPanel(page, 'Chats');
  const row = page.locator('#conversation-list li[data-conversation^="user:"]');
  await row.locator('.badge.unread', { hasText: String(total) }).waitFor();
  await row.getByRole('button').click();
  await page.locator('#message-list .body', { hasText: `number ${total}` }).waitFor();
  // Not everything at once: the first page is the newest.
  assert.ok((await page.locator('#message-list .msg').count()) < total);
  await shot(page, 'history-01-newest-page');

  const scroller = page.locator('#message-scroller');
  await eventually(async () => {
    await scroller.evaluate((element) => { element.scrollTop = 0; });
    return (await page.locator('#message-list .msg').count()) === total;
  }, 'every message after scrolling up');
  const shown = await bodies(page);
  assert.deepEqual(shown, Array.from({ length: total }, (_, i) => `number ${i + 1}`));
  await row.locator('.badge.unread').waitFor({ state: 'detached' });
  await shot(page, 'history-02-all-loaded');

  await context.close();
  await ivy.context.close();
});
