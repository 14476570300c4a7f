// The phone layout at 360, 390 and 430 px wide (and the desktop at 1280): nothing scrolls
// sideways; the lists and a chat are two screens with a back control; the composer is in view
// without scrolling, also when an on-screen keyboard takes half the height; "Log out" is in
// reach; one's own bubbles, even with a long unbroken address, are not clipped.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, shot, showPanel, eventually, DESKTOP,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const noSideScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

/** Whether the element is wholly inside the window, as shown now (no scrolling needed). */
function inWindow(locator) {
  return locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.left >= -0.5 && box.top >= -0.5
      && box.right <= window.innerWidth + 0.5 && box.bottom <= window.innerHeight + 0.5;
  });
}

const LONG = 'https://example.com/a/very/long/address/that/does/not/break/anywhere/on/its/own/at/all/really/truly';

for (const width of [360, 390, 430, DESKTOP.width]) {
  const phone = width < 700;
  const options = phone
    ? { viewport: { width, height: 800 }, isMobile: true, hasTouch: true }
    : { viewport: DESKTOP };
  test(`the layout at ${width} px wide`, async (t) => {
    const ann = await newUser(browser, `ann-${width}`, options);
    const ben = await newUser(browser, `ben-${width}`, options);
    await t.test('signed in, the lists fit and Log out is in reach', async () => {
      assert.ok(await noSideScroll(ann.page), 'the chat list scrolls sideways');
      assert.ok(await inWindow(ann.page.getByRole('button', { name: 'Log out' })), 'Log out is out of view');
      await befriend(ann, ben);
      assert.ok(await noSideScroll(ann.page), 'the friend list scrolls sideways');
    });

    await t.test('a chat fits, with the composer in view and own bubbles whole', async () => {
      await openChatWith(ann.page, ben.username);
      await openChatWith(ben.page, ann.username);
      for (let i = 1; i <= 15; i += 1) await sendText(ann.page, i === 15 ? LONG : `line ${i}`);
      await sendText(ben.page, 'and a reply to that long line');
      await waitForMessage(ann.page, 'and a reply to that long line');
      assert.ok(await noSideScroll(ann.page), 'the chat scrolls sideways');
      assert.equal(await ann.page.evaluate(() => window.scrollY), 0);
      assert.ok(await inWindow(ann.page.getByLabel('Message', { exact: true })), 'the message box is out of view');
      assert.ok(await inWindow(ann.page.locator('#composer').getByRole('button', { name: 'Send' })), 'Send is out of view');
      const mine = ann.page.locator('#message-list .msg.mine', { hasText: 'does/not/break' });
      assert.ok(await inWindow(mine), 'the own bubble is clipped');
      assert.ok(await mine.locator('.body').evaluate((body) => body.scrollWidth <= body.clientWidth), 'the text overflows its bubble');
      await shot(ann.page, `layout-${width}-01-chat`);
    });

    if (phone) {
      await t.test('on a phone the chat is its own screen, with a back control to the list', async () => {
        assert.equal(await ann.page.locator('.sidebar').isVisible(), false);
        const back = ann.page.getByRole('button', { name: 'Back to chats' });
        assert.ok(await inWindow(back), 'the back control is out of view');
        await back.click();
        await ann.page.locator('.sidebar').waitFor();
        assert.equal(await ann.page.locator('#chat').isVisible(), false);
        assert.ok(await noSideScroll(ann.page));
        await showPanel(ann.page, 'Chats');
        await ann.page.locator('#conversation-list .conversation', { hasText: ben.username }).click();
        await ann.page.locator('#chat-title', { hasText: ben.username }).waitFor();
      });

      await t.test('with an on-screen keyboard taking half the height, the composer stays in view', async () => {
        await ann.page.setViewportSize({ width, height: 400 });
        await ann.page.getByLabel('Message', { exact: true }).focus();
        // The layout follows the visual viewport's resize event.
        await eventually(() => inWindow(ann.page.getByLabel('Message', { exact: true })), 'the message box above the keyboard');
        assert.ok(await inWindow(ann.page.locator('#composer').getByRole('button', { name: 'Send' })));
        assert.ok(await noSideScroll(ann.page));
        await shot(ann.page, `layout-${width}-02-keyboard`);
        await ann.page.setViewportSize({ width, height: 800 });
      });
    }

    await t.test('the profile screen fits', async () => {
      await ann.page.getByRole('button', { name: 'Edit profile' }).click();
      await ann.page.getByLabel('Nickname').waitFor();
      assert.ok(await noSideScroll(ann.page));
      assert.ok(await inWindow(ann.page.getByRole('button', { name: 'Log out' })));
    });

    await ann.context.close();
    await ben.context.close();
  });
}

test('the sign-in screen fits at 360, 390 and 430 px wide', async () => {
  for (const width of [360, 390, 430]) {
    const user = await newUser(browser, `s-${width}`, { viewport: { width, height: 800 }, isMobile: true, hasTouch: true });
    await user.page.getByRole('button', { name: 'Log out' }).click();
    await user.page.getByLabel('Username').waitFor();
    assert.ok(await noSideScroll(user.page), `the sign-in screen scrolls sideways at ${width}`);
    assert.ok(await inWindow(user.page.getByRole('button', { name: 'Register' })));
    await user.context.close();
  }
});
