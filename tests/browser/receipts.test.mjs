// Delivered and read marks, "Seen by" in groups, and profiles that change live, at desktop and
// phone sizes: ✓ once sent, ✓✓ once the friend's device has it, "Read" once they look at the chat
// (live, and again after a reload from the conversation list); "Read by 1" and the readers' names
// in a group; a friend's new nickname reaching an open page without a reload.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, shot, eventually, userId, waitOnline,
  createGroup, joinGroup, openGroup, uniqueName, showPanel, VIEWPORTS, bubble,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Waits until the mark on one's own message is `state` (sent, delivered, read). */
async function waitMark(message, state) {
  await eventually(async () => (await message.getAttribute('data-receipt')) === state, `the message ${state}`);
}

for (const { name: size, options } of VIEWPORTS) {
  test(`receipts and live profiles at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    await befriend(ann, ben);
    const benId = await userId(ben.page);
    await openChatWith(ann.page, ben.username);
    await showPanel(ben.page, 'Chats'); // ben is online but not looking at the chat

    await t.test('one-to-one: sent, delivered, then read, said in words too', async () => {
      await ben.context.setOffline(true); // ben's device cannot get it yet
      await sendText(ann.page, 'are you there?');
      const mine = bubble(ann.page, 'are you there?');
      await waitMark(mine, 'sent');
      assert.equal(await mine.locator('.receipt').textContent(), '✓Sent');
      await ben.context.setOffline(false);
      await waitMark(mine, 'delivered');
      assert.equal(await mine.locator('.receipt .visually-hidden').textContent(), 'Delivered');
      await showPanel(ben.page, 'Chats');
      await ben.page.locator(`#conversation-list li[data-conversation^="user:"] .unread`).waitFor();
      assert.equal(await mine.getAttribute('data-receipt'), 'delivered'); // not read while ben looks elsewhere

      await ben.page.locator('#conversation-list .conversation', { hasText: ann.username }).click();
      await waitForMessage(ben.page, 'are you there?');
      await waitMark(mine, 'read');
      assert.equal(await mine.locator('.receipt.read .visually-hidden').textContent(), 'Read');
      assert.equal(await mine.locator('.receipt [aria-hidden="true"]').textContent(), '✓✓');
      // Only one's own messages carry a mark.
      await sendText(ben.page, 'yes, here');
      await waitForMessage(ann.page, 'yes, here');
      assert.equal(await bubble(ann.page, 'yes, here').locator('.receipt').count(), 0);
      await shot(ann.page, `receipts-${size}-01-read`);
    });

    await t.test('after a reload the marks come from the conversation list', async () => {
      await ben.page.evaluate(() => { location.hash = '#/'; }); // ben stops looking
      await showPanel(ben.page, 'Chats');
      await sendText(ann.page, 'one more, unread');
      await ben.page.locator('#conversation-list .conversation', { hasText: 'one more, unread' }).waitFor();
      await waitMark(bubble(ann.page, 'one more, unread'), 'delivered');
      await ann.page.reload();
      await waitOnline(ann.page);
      await waitForMessage(ann.page, 'one more, unread');
      await waitMark(bubble(ann.page, 'are you there?'), 'read');
      await waitMark(bubble(ann.page, 'one more, unread'), 'delivered');
    });

    const group = uniqueName('pier');
    await t.test('group: "Read by 1" and who, from the message menu', async () => {
      await createGroup(ann, group);
      await joinGroup(ben, group);
      await openGroup(ann.page, group);
      await sendText(ann.page, 'group hello');
      await waitForMessage(ben.page, 'group hello');
      const mine = bubble(ann.page, 'group hello');
      await mine.locator('.receipt', { hasText: 'Read by 1' }).waitFor();
      await mine.hover();
      await mine.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'Seen by…' }).click();
      const dialog = ann.page.getByRole('dialog', { name: 'Seen by 1 person' });
      await dialog.waitFor();
      assert.deepEqual(await dialog.locator('li').allTextContents(), [ben.username]);
      await shot(ann.page, `receipts-${size}-02-seen-by`);
      await ann.page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
    });

    await t.test("a friend's new nickname shows without a reload", async () => {
      await sendText(ben.page, 'from ben in the group');
      await waitForMessage(ann.page, 'from ben in the group');
      const nickname = `Benedict ${size}`;
      await ben.page.getByRole('button', { name: 'Edit profile' }).click();
      await ben.page.getByLabel('Nickname').fill(nickname);
      await ben.page.getByRole('button', { name: 'Save profile' }).click();
      await bubble(ann.page, 'from ben in the group').locator('.author', { hasText: nickname }).waitFor({ timeout: 5000 });
      const row = ann.page.locator(`#conversation-list li[data-conversation="user:${benId}"] .name`);
      await eventually(async () => (await row.textContent()) === nickname, 'the chat list renamed', 5000);
      await openChatWith(ann.page, ben.username);
      assert.equal(await ann.page.locator('#chat-title').textContent(), nickname);
    });

    await ann.context.close();
    await ben.context.close();
  });
}
