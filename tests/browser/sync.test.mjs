// Staying in step: a second tab of the same user gets the same messages and read marks, and
// after a network drop the client reconnects and shows what was sent meanwhile exactly once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, bodies, shot, showPanel,
  openPage, waitOnline, eventually,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const count = (list, text) => list.filter((body) => body === text).length;

test('two tabs and a network drop', async (t) => {
  const frank = await newUser(browser, 'frank');
  const gina = await newUser(browser, 'gina');
  await befriend(frank, gina);
  await openChatWith(frank.page, gina.username);
  await openChatWith(gina.page, frank.username);
  // A second tab of frank's: the same browser profile, so already signed in.
  const second = await openPage(frank.context, `${frank.username}#2`);
  await waitOnline(second);
  await second.locator('#me-name', { hasText: frank.username }).waitFor();

  await t.test('both tabs get the same message; reading in one clears the other', async () => {
    await sendText(gina.page, 'to both of your tabs');
    await waitForMessage(frank.page, 'to both of your tabs');
    // The second tab is not looking at the chat: it shows the badge, then clears it when the
    // first tab's read arrives (the first has the chat open, so it read at once).
    const row = second.locator('#conversation-list li[data-conversation^="user:"]');
    await row.waitFor();
    await row.locator('.badge.unread').waitFor({ state: 'detached' });
    await row.getByRole('button').click();
    await waitForMessage(second, 'to both of your tabs');
    assert.equal(count(await bodies(second), 'to both of your tabs'), 1);
  });

  await t.test('what one tab sends shows in the other', async () => {
    await sendText(second, 'sent from tab two');
    await waitForMessage(frank.page, 'sent from tab two');
    await waitForMessage(gina.page, 'sent from tab two');
    await shot(second, 'sync-01-second-tab');
  });

  await t.test('an unread badge in the second tab clears when the first reads', async () => {
    await showPanel(second, 'Friends'); // the second tab stops looking at the chat
    await second.getByRole('button', { name: 'Edit profile' }).click();
    await frank.page.getByRole('button', { name: 'Edit profile' }).click();
    await sendText(gina.page, 'read me somewhere');
    await showPanel(second, 'Chats');
    const row = second.locator('#conversation-list li[data-conversation^="user:"]');
    await row.locator('.badge.unread').waitFor();
    await shot(second, 'sync-02-badge-before-read');
    await showPanel(frank.page, 'Chats');
    await frank.page.locator('#conversation-list .conversation', { hasText: gina.username }).click();
    await waitForMessage(frank.page, 'read me somewhere');
    await row.locator('.badge.unread').waitFor({ state: 'detached' });
  });

  await t.test('offline: messages sent meanwhile arrive once after the reconnect', async () => {
    await second.locator('#conversation-list .conversation', { hasText: gina.username }).click();
    await frank.context.setOffline(true);
    await frank.page.locator('#connection[data-state="reconnecting"]').waitFor();
    await second.locator('#connection[data-state="reconnecting"]').waitFor();
    await shot(frank.page, 'sync-03-offline');
    const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
    for (const text of missed) {
      await sendText(gina.page, text);
      await gina.page.locator('#message-list .msg:not(.pending) .body', { hasText: text }).waitFor();
    }
    await frank.context.setOffline(false);
    for (const page of [frank.page, second]) {
      await waitOnline(page);
      for (const text of missed) await waitForMessage(page, text);
      await eventually(async () => {
        const seen = await bodies(page);
        return missed.every((text) => count(seen, text) === 1)
          && count(seen, 'to both of your tabs') === 1
          && count(seen, 'sent from tab two') === 1;
      }, 'each message once');
    }
    await shot(frank.page, 'sync-04-back-online');
  });

  await t.test('a dropped socket: the client reconnects and syncs from its cursor', async () => {
    await frank.page.evaluate(() => window.natter.socket.drop());
    await sendText(gina.page, 'after the drop');
    await sendText(gina.page, 'and one more');
    await waitOnline(frank.page);
    await waitForMessage(frank.page, 'and one more');
    await eventually(async () => {
      const seen = await bodies(frank.page);
      return count(seen, 'after the drop') === 1 && count(seen, 'and one more') === 1
        && count(seen, 'while you were away 1') === 1;
    }, 'each message once after the drop');
    // The order is the order sent.
    const seen = await bodies(frank.page);
    assert.ok(seen.indexOf('after the drop') < seen.indexOf('and one more'));
    assert.ok(seen.indexOf('while you were away 3') < seen.indexOf('after the drop'));
  });

  await t.test('what frank sends while offline goes out once when he is back', async () => {
    await frank.context.setOffline(true);
    await frank.page.locator('#connection[data-state="reconnecting"]').waitFor();
    await sendText(frank.page, 'written offline');
    await frank.page.locator('#message-list .msg.pending', { hasText: 'written offline' }).waitFor();
    await frank.context.setOffline(false);
    await waitForMessage(gina.page, 'written offline');
    await frank.page.locator('#message-list .msg.pending').waitFor({ state: 'detached' });
    await eventually(async () => count(await bodies(gina.page), 'written offline') === 1
      && count(await bodies(frank.page), 'written offline') === 1
      && count(await bodies(second), 'written offline') === 1, 'one copy everywhere');
  });

  await frank.context.close();
  await gina.context.close();
});
