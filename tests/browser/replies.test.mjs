// Replies, edits and reactions from the message menu, at desktop and phone sizes, with two
// people: the quote shows for both and leads to the original; an edit changes the text for both
// and survives a reload; reaction chips count, name who reacted and toggle; none of these events
// is shown as a message, counted unread or made the chat list's preview; and reply, edit and
// react work with the keyboard alone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, shot, eventually, makePng, userId, waitOnline,
  showPanel, VIEWPORTS, bubble,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Picks `name` from the message menu of `message`, with the pointer. */
async function menuAction(page, message, name) {
  await message.hover();
  await message.getByRole('button', { name: 'More actions' }).click();
  await page.getByRole('menuitem', { name }).click();
}

/** The label of the chip for `emoji` on `message`, or null. */
function chip(message, emoji) {
  return message.locator('.reactions .chip', { hasText: emoji });
}

/** Waits until the message has been answered with `sent` (no longer pending). */
async function waitSent(message) {
  await message.waitFor();
  await eventually(async () => !(await message.getAttribute('class')).includes('pending'), 'the message sent');
}

for (const { name: size, options } of VIEWPORTS) {
  test(`reply, edit and react at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    await befriend(ann, ben);
    const annId = await userId(ann.page);
    await openChatWith(ann.page, ben.username);
    await openChatWith(ben.page, ann.username);

    await t.test('a reply quotes the message it answers, for both, and the quote leads to it', async () => {
      await sendText(ben.page, 'the original question');
      await waitForMessage(ann.page, 'the original question');
      await menuAction(ann.page, bubble(ann.page, 'the original question'), 'Reply');
      const bar = ann.page.locator('#composer-mode');
      await bar.waitFor();
      assert.match(await bar.textContent(), new RegExp(`Replying to ${ben.username}.*the original question`));
      assert.equal(await ann.page.evaluate(() => document.activeElement.id), 'composer-text');
      await sendText(ann.page, 'the answer');
      await bar.waitFor({ state: 'hidden' });
      for (const [page, author] of [[ann.page, ben.username], [ben.page, 'You']]) {
        const quote = bubble(page, 'the answer').locator('.quote');
        await quote.waitFor();
        assert.match(await quote.textContent(), new RegExp(`${author}.*the original question`));
      }
      // Sent without a quote afterwards: the reply mode ended with the reply.
      await sendText(ann.page, 'no quote here');
      await waitForMessage(ben.page, 'no quote here');
      assert.equal(await bubble(ben.page, 'no quote here').locator('.quote').count(), 0);

      await bubble(ben.page, 'the answer').locator('.quote').click();
      const original = bubble(ben.page, 'the original question');
      await eventually(async () => (await original.getAttribute('class')).includes('flash'), 'the original highlighted');
      assert.equal(await original.evaluate((element) => element === document.activeElement), true);

      // An image's quote says "Photo"; × drops a reply before it is sent.
      await ben.page.locator('#composer-file').setInputFiles({ name: 'p.png', mimeType: 'image/png', buffer: makePng(40) });
      await ben.page.getByRole('button', { name: 'Send image' }).click();
      const image = ann.page.locator('#message-list li.msg[data-kind="image"]').last();
      await waitSent(image);
      await menuAction(ann.page, image, 'Reply');
      assert.match(await bar.textContent(), /Photo/);
      await ann.page.getByRole('button', { name: 'Cancel the reply' }).click();
      await bar.waitFor({ state: 'hidden' });
      await menuAction(ann.page, image, 'Reply');
      await sendText(ann.page, 'nice picture');
      await bubble(ben.page, 'nice picture').locator('.quote', { hasText: 'Photo' }).waitFor();
    });

    await t.test('an edit changes the text for both, says "edited", and Escape cancels one', async () => {
      await sendText(ann.page, 'teh typo');
      const mine = bubble(ann.page, 'teh typo');
      await waitSent(mine);
      await waitForMessage(ben.page, 'teh typo');
      const box = ann.page.getByLabel('Message', { exact: true });
      await box.fill('words being written');
      await menuAction(ann.page, mine, 'Edit');
      assert.equal(await box.inputValue(), 'teh typo');
      await box.press('Escape');
      assert.equal(await box.inputValue(), 'words being written');
      assert.equal(await ann.page.locator('#composer-mode').isHidden(), true);

      await menuAction(ann.page, mine, 'Edit');
      await box.fill('the typo, fixed');
      await box.press('Enter');
      for (const page of [ann.page, ben.page]) {
        const edited = bubble(page, 'the typo, fixed');
        await edited.locator('.edited').waitFor();
        assert.equal(await edited.locator('.body').textContent(), 'the typo, fixed');
      }
      assert.equal(await box.inputValue(), 'words being written');
      assert.equal(await bubble(ben.page, 'teh typo').count(), 0);
      // Only one's own text messages can be edited.
      await bubble(ann.page, 'the original question').hover();
      await bubble(ann.page, 'the original question').getByRole('button', { name: 'More actions' }).click();
      assert.equal(await ann.page.getByRole('menuitem', { name: 'Edit' }).count(), 0);
      await ann.page.keyboard.press('Escape');
      await box.fill('');

      await ben.page.reload();
      await waitOnline(ben.page);
      await bubble(ben.page, 'the typo, fixed').locator('.edited').waitFor();
      assert.equal(await bubble(ben.page, 'teh typo').count(), 0);
    });

    await t.test('reactions: chips count, name who reacted, toggle, and come back with history', async () => {
      const onBen = bubble(ben.page, 'the typo, fixed');
      await menuAction(ben.page, onBen, 'React…');
      const picker = ben.page.getByRole('group', { name: 'Pick a reaction' });
      await picker.waitFor();
      assert.equal(await picker.getByRole('button').count(), 6);
      await picker.getByRole('button', { name: 'React with 👍' }).click();
      await picker.waitFor({ state: 'detached' });
      await chip(onBen, '👍').waitFor();
      assert.equal(await chip(onBen, '👍').textContent(), '👍 1');
      assert.equal(await chip(onBen, '👍').getAttribute('aria-pressed'), 'true');

      const onAnn = bubble(ann.page, 'the typo, fixed');
      await chip(onAnn, '👍 1').waitFor();
      assert.equal(await chip(onAnn, '👍').getAttribute('aria-pressed'), 'false');
      assert.match(await chip(onAnn, '👍').getAttribute('aria-label'), new RegExp(ben.username));
      await chip(onAnn, '👍').click();
      await chip(onAnn, '👍 2').waitFor();
      assert.equal(await chip(onAnn, '👍').getAttribute('aria-pressed'), 'true');
      await chip(onBen, '👍 2').waitFor();
      assert.match(await chip(onBen, '👍').getAttribute('aria-label'), new RegExp(`${ann.username} and you`));
      await shot(ann.page, `replies-${size}-01-reactions`);
      await chip(onAnn, '👍').click();
      await chip(onAnn, '👍 1').waitFor();
      assert.equal(await chip(onAnn, '👍').getAttribute('aria-pressed'), 'false');
      await chip(onBen, '👍 1').waitFor();

      await ann.page.reload();
      await waitOnline(ann.page);
      const again = bubble(ann.page, 'the typo, fixed');
      await chip(again, '👍 1').waitFor();
      assert.equal(await chip(again, '👍').getAttribute('aria-pressed'), 'false');
      await eventually(async () => (await chip(again, '👍').getAttribute('aria-label')).includes(ben.username), 'the reactor named');
    });

    await t.test('edits and reactions are never messages: not shown, not unread, not the preview', async () => {
      await ben.page.evaluate(() => { location.hash = '#/'; });
      await showPanel(ben.page, 'Chats');
      const row = ben.page.locator(`#conversation-list li[data-conversation="user:${annId}"]`);
      await row.waitFor();
      const before = await ann.page.locator('#message-list li.msg').count();
      await chip(bubble(ann.page, 'the typo, fixed'), '👍').click(); // ann reacts to her own message
      await menuAction(ann.page, bubble(ann.page, 'the typo, fixed'), 'Edit');
      await ann.page.getByLabel('Message', { exact: true }).fill('fixed once more');
      await ann.page.getByLabel('Message', { exact: true }).press('Enter');
      await menuAction(ann.page, bubble(ann.page, 'the original question'), 'React…');
      await ann.page.getByRole('button', { name: 'React with 🎉' }).click();
      // The edit reached ben: the preview of the newest message follows it.
      await eventually(async () => (await row.locator('.last').textContent()) === 'fixed once more', 'the edited preview');
      await ben.page.waitForTimeout(500);
      assert.equal(await row.locator('.unread').count(), 0);
      assert.equal(await ben.page.title(), 'natter');
      assert.equal(await ann.page.locator('#message-list li.msg').count(), before);
      await sendText(ann.page, 'a real message');
      await row.locator('.unread', { hasText: '1' }).waitFor();
      assert.equal(await ben.page.title(), '(1) natter');
    });

    await t.test('keyboard only: reply, react and edit through the message menu', async () => {
      await openChatWith(ben.page, ann.username);
      const list = ann.page.locator('#message-list');
      const keys = ann.page.keyboard;
      await sendText(ben.page, 'answer me by keyboard');
      await waitForMessage(ann.page, 'answer me by keyboard');
      await list.locator('li.msg').first().focus();
      await keys.press('End');
      await keys.press('Tab');
      assert.equal(await ann.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'More actions');
      await keys.press('Enter');
      const reply = ann.page.getByRole('menuitem', { name: 'Reply' });
      assert.equal(await reply.evaluate((element) => element === document.activeElement), true);
      await keys.press('Enter');
      assert.equal(await ann.page.evaluate(() => document.activeElement.id), 'composer-text');
      await keys.type('answered by keyboard');
      await keys.press('Enter');
      await bubble(ben.page, 'answered by keyboard').locator('.quote', { hasText: 'answer me by keyboard' }).waitFor();

      // React: the picker takes the focus; the arrows move along it.
      await waitSent(bubble(ann.page, 'answered by keyboard'));
      await list.locator('li.msg').first().focus();
      await keys.press('End');
      await keys.press('Tab');
      await keys.press('Enter');
      await ann.page.getByRole('menuitem', { name: 'React…' }).focus();
      await keys.press('Enter');
      assert.equal(await ann.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'React with 👍');
      await keys.press('ArrowRight');
      await keys.press('Enter');
      await chip(bubble(ben.page, 'answered by keyboard'), '❤️ 1').waitFor();

      // Edit: down the menu to Edit, change the text, Enter saves.
      await list.locator('li.msg').first().focus();
      await keys.press('End');
      await keys.press('Tab');
      await keys.press('Enter');
      for (let i = 0; i < 5; i += 1) {
        if (await ann.page.evaluate(() => document.activeElement.textContent) === 'Edit') break;
        await keys.press('ArrowDown');
      }
      assert.equal(await ann.page.evaluate(() => document.activeElement.textContent), 'Edit');
      await keys.press('Enter');
      assert.equal(await ann.page.evaluate(() => document.activeElement.value), 'answered by keyboard');
      await keys.press('Control+A');
      await keys.type('answered and edited by keyboard');
      await keys.press('Enter');
      await bubble(ben.page, 'answered and edited by keyboard').locator('.edited').waitFor();
      await shot(ben.page, `replies-${size}-02-keyboard`);
    });

    await ann.context.close();
    await ben.context.close();
  });
}
