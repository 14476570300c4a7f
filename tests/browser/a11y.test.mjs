// Accessibility: axe-core finds nothing serious or critical on the main screens (sign-in, chat
// list, an open chat with a reply, reactions, read marks and the emoji picker, group settings,
// the "Seen by" dialog, invite links and member controls, the invite screen, profile, the
// blocked list, the remove-friend dialog) at desktop and phone
// size; and a person using only the keyboard signs in, picks a chat and sends a message, seeing
// where the focus is at every step.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newContext, openPage, newUser, befriend, openChatWith, sendText, waitForMessage, showPanel, shot,
  createGroup, uniqueName, waitOnline, seriousViolations, PASSWORD, VIEWPORTS,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function noSerious(page, screen) {
  const found = await seriousViolations(page);
  assert.deepEqual(found, [], `${screen}: ${found.join('; ')}`);
}

for (const { name: size, options } of VIEWPORTS) {
  test(`axe finds nothing serious at ${size} size`, async (t) => {
    await t.test('sign-in', async () => {
      const context = await newContext(browser, options);
      const page = await openPage(context, `axe-${size}`);
      await page.getByLabel('Username').waitFor();
      await noSerious(page, 'sign-in');
      await context.close();
    });

    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    await befriend(ann, ben);

    await t.test('chat list', async () => {
      await openChatWith(ann.page, ben.username);
      await sendText(ann.page, 'hello, see https://example.com');
      await showPanel(ben.page, 'Chats');
      await ben.page.locator('#conversation-list .conversation', { hasText: 'hello, see' }).waitFor();
      await noSerious(ben.page, 'chat list');
    });

    await t.test('an open chat, with its message menu', async () => {
      await ben.page.locator('#conversation-list .conversation', { hasText: ann.username }).click();
      await sendText(ben.page, 'hi ann');
      await waitForMessage(ann.page, 'hi ann');
      await noSerious(ann.page, 'open chat');
      const mine = ann.page.locator('#message-list .msg.mine').last();
      await mine.hover();
      await mine.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'Recall' }).waitFor();
      await noSerious(ann.page, 'message menu');
      await ann.page.keyboard.press('Escape');
    });

    await t.test('a reply, reactions, read marks and the open emoji picker', async () => {
      const theirs = ann.page.locator('#message-list .msg.theirs').last();
      await theirs.hover();
      await theirs.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'Reply' }).click();
      await ann.page.locator('#composer-mode').waitFor();
      await noSerious(ann.page, 'replying');
      await sendText(ann.page, 'a reply to ben');
      await ann.page.locator('#message-list .msg.mine .quote').waitFor();
      await theirs.hover();
      await theirs.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'React…' }).click();
      await ann.page.getByRole('button', { name: 'React with 🎉' }).click();
      await theirs.locator('.chip').waitFor();
      await ann.page.locator('#message-list .msg.mine[data-receipt="read"]').last().waitFor();
      await noSerious(ann.page, 'reply, reactions and marks');
      await theirs.hover();
      await theirs.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'React…' }).click();
      await ann.page.getByRole('group', { name: 'Pick a reaction' }).waitFor();
      await noSerious(ann.page, 'emoji picker');
      await ann.page.keyboard.press('Escape');
    });

    await t.test('group settings, and who saw a message', async () => {
      await createGroup(ann, uniqueName('quay'));
      await sendText(ann.page, 'a note to the group');
      const note = ann.page.locator('#message-list .msg.mine', { hasText: 'a note to the group' });
      await note.and(ann.page.locator('[data-seq]:not([data-seq=""])')).waitFor();
      await note.hover();
      await note.getByRole('button', { name: 'More actions' }).click();
      await ann.page.getByRole('menuitem', { name: 'Seen by…' }).click();
      await ann.page.getByRole('dialog').waitFor();
      await noSerious(ann.page, 'seen by');
      await ann.page.keyboard.press('Escape');
      await ann.page.getByRole('dialog').waitFor({ state: 'detached' });
      await ann.page.getByRole('button', { name: 'Group settings' }).click();
      await ann.page.getByLabel('Group name', { exact: true }).waitFor();
      await noSerious(ann.page, 'group settings');
    });

    let invite;
    await t.test('group settings with an invite link and the member controls open', async () => {
      await ann.page.getByRole('button', { name: 'Create invite link' }).click();
      invite = (await ann.page.locator('#invite-list .invite-link').first().textContent()).trim();
      await ann.page.getByLabel('Add a friend').selectOption({ index: 0 });
      await ann.page.getByRole('button', { name: 'Add to group' }).click();
      await ann.page.getByRole('button', { name: `Mute ${ben.username}…` }).click();
      await ann.page.getByRole('button', { name: `Mute ${ben.username} for 8 hours` }).waitFor();
      await noSerious(ann.page, 'group settings with invites and member controls');
    });

    await t.test('the invite-join screen', async () => {
      await ben.page.goto(invite);
      await waitOnline(ben.page);
      await ben.page.getByRole('button', { name: 'Open group' }).waitFor();
      await noSerious(ben.page, 'invite screen');
      await ben.page.getByRole('button', { name: 'Close' }).click();
    });

    await t.test('profile', async () => {
      await ann.page.getByRole('button', { name: 'Edit profile' }).click();
      await ann.page.getByLabel('Nickname').waitFor();
      await noSerious(ann.page, 'profile');
    });

    await t.test('the remove-friend dialog', async () => {
      await showPanel(ann.page, 'Friends');
      await ann.page.getByRole('button', { name: `Remove ${ben.username} from friends` }).click();
      await ann.page.getByRole('dialog').waitFor();
      await noSerious(ann.page, 'dialog');
      await ann.page.keyboard.press('Escape');
    });

    await t.test('profile with the blocked list', async () => {
      await ann.page.getByRole('list', { name: 'Your friends' }).getByRole('button', { name: `Block ${ben.username}` }).click();
      await ann.page.getByRole('dialog').getByRole('button', { name: 'Block', exact: true }).click();
      await ann.page.getByRole('button', { name: 'Edit profile' }).click();
      await ann.page.getByRole('button', { name: `Unblock ${ben.username}` }).waitFor();
      await noSerious(ann.page, 'profile with blocked people');
    });

    await ann.context.close();
    await ben.context.close();
  });

  test(`keyboard only at ${size} size: sign in, pick a chat, send`, async () => {
    const ann = await newUser(browser, `kan-${size[0]}`, options);
    const ben = await newUser(browser, `kbe-${size[0]}`, options);
    await befriend(ann, ben);
    await openChatWith(ben.page, ann.username);
    await sendText(ben.page, 'ping from ben');
    await ann.page.getByRole('button', { name: 'Log out' }).click();
    const page = ann.page;
    await page.getByLabel('Username').waitFor();

    // From here on, only the keyboard. Signing out left the focus in the username box.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'auth-username');
    await page.keyboard.press('Control+A'); // the box remembers the last username
    await page.keyboard.type(ann.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await waitOnline(page);

    const unmarked = [];
    let found = false;
    for (let i = 0; i < 40 && !found; i += 1) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        const element = document.activeElement;
        const style = getComputedStyle(element);
        return {
          what: element.id || element.getAttribute('aria-label') || element.textContent.trim().slice(0, 40),
          conversation: element.closest('#conversation-list') !== null,
          marked: element.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
        };
      });
      if (!focus.marked) unmarked.push(focus.what);
      found = focus.conversation && focus.what.includes(ben.username);
    }
    assert.ok(found, 'Tab never reached the conversation with ben');
    assert.deepEqual(unmarked, [], 'focused without a visible focus style');
    await shot(page, `a11y-${size}-keyboard-focus`);
    await page.keyboard.press('Enter');
    await page.locator('#chat-title', { hasText: ben.username }).waitFor();
    await waitForMessage(page, 'ping from ben');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'composer-text');
    await page.keyboard.type('pong, by keyboard alone');
    await page.keyboard.press('Enter');
    await waitForMessage(ben.page, 'pong, by keyboard alone');

    await ann.context.close();
    await ben.context.close();
  });
}
