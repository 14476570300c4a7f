// Two people in two browser contexts: register, befriend through search and a request, chat both
// ways, unread badges, typing, an image shown inline, recall, and presence when one leaves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, bodies, shot, showPanel,
  eventually, makePng, WAIT,
} from './helpers.mjs';

let browser;
let alice;
let bob;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('two people register, befriend and chat', async (t) => {
  await t.test('both register and are online', async () => {
    alice = await newUser(browser, 'alice');
    bob = await newUser(browser, 'bob');
    await shot(alice.page, 'social-01-alice-signed-in');
  });

  await t.test('alice finds bob and asks; bob accepts', async () => {
    await befriend(alice, bob, 'hi, it is alice');
    // bob's friend list shows alice online, and alice's shows bob online.
    await bob.page.locator(`#friend-list li[data-user="${alice.username}"][data-online="true"]`).waitFor();
    await alice.page.locator(`#friend-list li[data-user="${bob.username}"][data-online="true"]`).waitFor();
    await shot(alice.page, 'social-02-friends');
  });

  await t.test('a message shows as unread until bob opens the chat', async () => {
    await openChatWith(alice.page, bob.username);
    await sendText(alice.page, 'Hello bob <b>not bold</b>');
    await waitForMessage(alice.page, 'Hello bob <b>not bold</b>');

    await showPanel(bob.page, 'Chats');
    const badge = bob.page.locator(`#conversation-list li[data-conversation^="user:"] .badge.unread`);
    await badge.waitFor();
    assert.match(await badge.textContent(), /^1/);
    await shot(bob.page, 'social-03-unread-badge');

    await bob.page.locator('#conversation-list .conversation', { hasText: alice.username }).click();
    await waitForMessage(bob.page, 'Hello bob <b>not bold</b>');
    await badge.waitFor({ state: 'detached' });
    // The text is shown as text, not as HTML.
    assert.equal(await bob.page.locator('#message-list b').count(), 0);
  });

  await t.test('bob answers; alice sees it; Shift+Enter makes a new line', async () => {
    const box = bob.page.getByLabel('Message', { exact: true });
    await box.fill('Hi alice');
    await box.press('Shift+Enter');
    await box.type('second line');
    await box.press('Enter');
    await waitForMessage(alice.page, 'second line');
    assert.ok((await bodies(alice.page)).includes('Hi alice\nsecond line'));
    await eventually(async () => (await bodies(bob.page)).filter((b) => b === 'Hi alice\nsecond line').length === 1,
      'bob sees his message once');
  });

  await t.test('typing shows on the other side', async () => {
    await alice.page.getByLabel('Message', { exact: true }).type('typing away', { delay: 30 });
    await bob.page.locator('#typing', { hasText: 'is typing' }).waitFor();
    await shot(bob.page, 'social-04-typing');
    await alice.page.getByLabel('Message', { exact: true }).press('Enter');
    await waitForMessage(bob.page, 'typing away');
  });

  await t.test('an image is previewed, sent and shown inline on both sides', async () => {
    await alice.page.locator('#composer-file').setInputFiles({
      name: 'square.png',
      mimeType: 'image/png',
      buffer: makePng(64),
    });
    await alice.page.locator('#image-preview img[src^="blob:"]').waitFor();
    await shot(alice.page, 'social-05-image-preview');
    await alice.page.getByRole('button', { name: 'Send image' }).click();

    for (const side of [alice, bob]) {
      const image = side.page.locator('#message-list .msg[data-kind="image"] img[src^="blob:"]');
      await image.waitFor();
      await eventually(
        () => image.evaluate((element) => element.complete && element.naturalWidth > 0),
        'the image to decode',
      );
    }
    await shot(bob.page, 'social-06-image-received');
  });

  await t.test('alice recalls a message; it is hidden for bob', async () => {
    await sendText(alice.page, 'oops, wrong chat');
    await waitForMessage(bob.page, 'oops, wrong chat');
    const mine = alice.page.locator('#message-list .msg.mine', { hasText: 'oops, wrong chat' });
    await mine.hover();
    await mine.getByRole('button', { name: 'More actions' }).click();
    await mine.getByRole('menuitem', { name: 'Recall' }).click();
    await bob.page.locator('#message-list .msg.recalled').waitFor();
    await eventually(async () => !(await bodies(bob.page)).includes('oops, wrong chat'), 'the text gone for bob');
    await alice.page.locator('#message-list .msg.mine.recalled').waitFor();
    await shot(bob.page, 'social-07-recalled');
  });

  await t.test('history survives a reload and loads from the server', async () => {
    await bob.page.reload();
    await bob.page.locator('#connection[data-state="online"]').waitFor();
    await bob.page.locator('#conversation-list .conversation', { hasText: alice.username }).click();
    await waitForMessage(bob.page, 'Hello bob <b>not bold</b>');
    await waitForMessage(bob.page, 'typing away');
    await bob.page.locator('#message-list .msg.recalled').waitFor();
    await bob.page.locator('#message-list .msg[data-kind="image"] img[src^="blob:"]').waitFor();
  });

  await t.test('bob leaves; alice sees him go offline', async () => {
    await showPanel(alice.page, 'Friends');
    const dot = alice.page.locator(`#friend-list li[data-user="${bob.username}"]`);
    await dot.and(alice.page.locator('[data-online="true"]')).waitFor();
    await bob.context.close();
    await alice.page.locator(`#friend-list li[data-user="${bob.username}"][data-online="false"]`)
      .waitFor({ timeout: WAIT });
    await shot(alice.page, 'social-08-bob-offline');
  });

  await alice.context.close();
});
