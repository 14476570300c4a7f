// Screenshots of the main screens at desktop and phone size, for the README. They go to
// test-artifacts/browser/ on every run; with NATTER_SCREENSHOTS=docs they replace the ones in
// docs/screenshots/ (to be committed). Each must stay small enough to keep in the repository.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  launch, newContext, openPage, newUser, befriend, openChatWith, sendText, waitForMessage, createGroup,
  showPanel, uniqueName, makePng, ARTIFACTS, DESKTOP, PHONE,
} from './helpers.mjs';

const DOCS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const FOLDER = process.env.NATTER_SCREENSHOTS === 'docs' ? DOCS : path.join(ARTIFACTS, 'screenshots');
const MAX_BYTES = 150 * 1024;
fs.mkdirSync(FOLDER, { recursive: true });

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function save(page, name) {
  const file = path.join(FOLDER, `${name}.png`);
  for (const button of await page.getByRole('button', { name: 'Dismiss notice' }).all()) await button.click();
  await page.waitForTimeout(200); // let avatars and images settle
  await page.screenshot({ path: file });
  const { size } = fs.statSync(file);
  assert.ok(size < MAX_BYTES, `${name}.png is ${size} bytes`);
}

async function nickname(user, name) {
  await user.page.getByRole('button', { name: 'Edit profile' }).click();
  await user.page.getByLabel('Nickname').fill(name);
  await user.page.getByRole('button', { name: 'Save profile' }).click();
  await user.page.locator('#profile-status', { hasText: 'Profile saved.' }).waitFor();
}

for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
  test(`screenshots at ${size} size`, async () => {
    const options = size === 'phone' ? { viewport, isMobile: true, hasTouch: true } : { viewport };
    const context = await newContext(browser, options);
    const page = await openPage(context, `shots-${size}`);
    await page.getByLabel('Username').waitFor();
    await save(page, `${size}-sign-in`);
    await context.close();

    const ada = await newUser(browser, 'ada', options);
    const tom = await newUser(browser, 'tom', options);
    await nickname(ada, 'Ada');
    await nickname(tom, 'Tom');
    await befriend(ada, tom);
    await openChatWith(ada.page, tom.username);
    await openChatWith(tom.page, ada.username);
    await sendText(tom.page, 'Are we still on for the hike on Saturday?');
    await sendText(tom.page, 'The forecast says sun: https://example.com/forecast');
    await waitForMessage(ada.page, 'The forecast says sun');
    await sendText(ada.page, 'Yes! I will bring the map.');
    await ada.page.locator('#composer-file').setInputFiles({ name: 'trail.png', mimeType: 'image/png', buffer: makePng(120, [40, 140, 90]) });
    await ada.page.getByRole('button', { name: 'Send image' }).click();
    await ada.page.locator('#message-list .msg.mine[data-kind="image"] img[src^="blob:"]').waitFor();
    // Tom answers Ada's message and reacts to it; Ada sees both, and her messages marked read.
    const map = tom.page.locator('#message-list li.msg.theirs', { hasText: 'I will bring the map' });
    await map.hover();
    await map.getByRole('button', { name: 'More actions' }).click();
    await tom.page.getByRole('menuitem', { name: 'Reply' }).click();
    await sendText(tom.page, 'Perfect, see you at 8');
    await map.hover();
    await map.getByRole('button', { name: 'More actions' }).click();
    await tom.page.getByRole('menuitem', { name: 'React…' }).click();
    await tom.page.getByRole('button', { name: 'React with ❤️' }).click();
    await waitForMessage(ada.page, 'Perfect, see you at 8');
    await ada.page.locator('#message-list .msg.mine .chip', { hasText: '❤️ 1' }).waitFor();
    await ada.page.locator('#message-list .msg .quote').waitFor();
    await ada.page.locator('#message-list .msg.mine[data-kind="image"][data-receipt="read"]').waitFor();
    await ada.page.mouse.move(0, 0);
    await save(ada.page, `${size}-chat`);

    await createGroup(ada, uniqueName('Hiking club').replace(/-\w+$/, ''));
    await sendText(ada.page, 'Welcome to the club!');
    await ada.page.getByRole('button', { name: 'Group settings' }).click();
    await ada.page.getByLabel('Group name', { exact: true }).waitFor();
    await save(ada.page, `${size}-group-settings`);

    await ada.page.getByRole('button', { name: 'Edit profile' }).click();
    await ada.page.getByLabel('Nickname').waitFor();
    await save(ada.page, `${size}-profile`);

    await tom.page.evaluate(() => { location.hash = '#/'; }); // tom is at the lists, no chat open
    await showPanel(tom.page, 'Chats');
    await openChatWith(ada.page, tom.username);
    await sendText(ada.page, 'One more thing: bring water');
    await tom.page.locator('#conversation-list .badge.unread').waitFor();
    await save(tom.page, `${size}-chat-list`);

    await ada.context.close();
    await tom.context.close();
  });
}
