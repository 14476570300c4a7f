// Getting attention, at desktop and phone size: the unread total in the title and the icon,
// desktop notifications (asked for from the settings switch, not on load; none for the chat in
// view; off again with the switch) and the optional beep, settings kept across a reload; a muted
// chat makes neither but still counts its unread messages.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, shot, showPanel, eventually, waitOnline,
  VIEWPORTS,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/**
 * Records notifications and beeps instead of showing and playing them. The permission starts
 * unasked and, once given, is kept for the tab (as the browser keeps it for the site).
 */
function recorder() {
  window.notes = [];
  window.asked = 0;
  class RecordedNotification {
    static permission = sessionStorage.getItem('permission') || 'default';

    static requestPermission() {
      window.asked += 1;
      RecordedNotification.permission = 'granted';
      sessionStorage.setItem('permission', 'granted');
      return Promise.resolve('granted');
    }

    constructor(title, options = {}) {
      this.title = title;
      this.body = options.body;
      window.notes.push(this);
    }

    close() {}
  }
  window.Notification = RecordedNotification;
  window.beeps = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function counted(...args) {
    window.beeps += 1;
    return start.apply(this, args);
  };
}

const notes = (page) => page.evaluate(() => window.notes.map((note) => ({ title: note.title, body: note.body })));
const beeps = (page) => page.evaluate(() => window.beeps);

for (const { name: size, options } of VIEWPORTS) {
  test(`attention at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    await befriend(ann, ben);
    await ben.context.grantPermissions(['notifications']);
    await ben.context.addInitScript(recorder);
    await ben.page.reload();
    await waitOnline(ben.page);

    await t.test('nothing is asked on load; the switch asks once and turns notifications and sound on', async () => {
      assert.equal(await ben.page.evaluate(() => window.asked), 0);
      assert.equal(await ben.page.title(), 'natter');
      await ben.page.getByRole('button', { name: 'Edit profile' }).click();
      const notify = ben.page.getByLabel('Desktop notifications for new messages');
      const sound = ben.page.getByLabel('A short sound for new messages');
      assert.equal(await notify.isChecked(), false);
      assert.equal(await sound.isChecked(), false); // off unless chosen
      await notify.check();
      await ben.page.locator('#settings-status', { hasText: 'Notifications are on.' }).waitFor();
      assert.equal(await ben.page.evaluate(() => window.asked), 1);
      await sound.check();
      await eventually(async () => (await beeps(ben.page)) === 1, 'a sample beep');
      await shot(ben.page, `attention-${size}-01-settings`);
    });

    await t.test('a message to the chat in view: no notification, no sound, no count', async () => {
      await openChatWith(ben.page, ann.username);
      await openChatWith(ann.page, ben.username);
      await sendText(ann.page, 'you are looking at this');
      await waitForMessage(ben.page, 'you are looking at this');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await notes(ben.page), []);
      assert.equal(await beeps(ben.page), 1);
      assert.equal(await ben.page.title(), 'natter');
    });

    await t.test('a message to a chat out of view: a notification, a beep, the count in the title and icon', async () => {
      await showPanel(ben.page, 'Friends');
      await ben.page.getByRole('button', { name: 'Edit profile' }).click(); // the chat closes
      await sendText(ann.page, 'while you are away');
      await eventually(async () => (await notes(ben.page)).length === 1, 'one notification');
      assert.deepEqual(await notes(ben.page), [{ title: ann.username, body: 'while you are away' }]);
      assert.equal(await beeps(ben.page), 2);
      await eventually(async () => (await ben.page.title()) === '(1) natter', 'the count in the title');
      const icon = await ben.page.locator('link[rel="icon"]').evaluate((link) => ({ href: link.href, unread: link.dataset.unread }));
      assert.match(icon.href, /^data:image\/png;base64,/);
      assert.equal(icon.unread, '1');
    });

    await t.test('clicking the notification opens its chat', async () => {
      await ben.page.evaluate(() => window.notes[0].onclick());
      await ben.page.locator('#chat-title', { hasText: ann.username }).waitFor();
      await waitForMessage(ben.page, 'while you are away');
      await eventually(async () => (await ben.page.title()) === 'natter', 'the count cleared');
    });

    await t.test('the settings survive a reload; switched off, no more notifications', async () => {
      await ben.page.reload();
      await waitOnline(ben.page);
      await ben.page.getByRole('button', { name: 'Edit profile' }).click();
      const notify = ben.page.getByLabel('Desktop notifications for new messages');
      assert.equal(await notify.isChecked(), true);
      assert.equal(await ben.page.getByLabel('A short sound for new messages').isChecked(), true);
      await notify.uncheck();
      await ben.page.getByLabel('A short sound for new messages').uncheck();
      const before = await beeps(ben.page);
      await sendText(ann.page, 'quietly now');
      await eventually(async () => (await ben.page.title()) === '(1) natter', 'the count in the title');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await notes(ben.page), []);
      assert.equal(await beeps(ben.page), before);
      assert.deepEqual(await ben.page.evaluate(() => JSON.parse(localStorage.getItem('natter.settings'))),
        { notifications: false, sound: false });
    });

    await t.test('a muted chat: no notification and no sound, but its unread count still shows', async () => {
      await ben.page.getByLabel('Desktop notifications for new messages').check();
      await ben.page.getByLabel('A short sound for new messages').check();
      await openChatWith(ben.page, ann.username);
      await ben.page.getByRole('button', { name: 'Mute', exact: true }).click();
      await ben.page.getByRole('button', { name: 'Until I unmute' }).click();
      await ben.page.getByRole('button', { name: 'Unmute', exact: true }).waitFor();
      await showPanel(ben.page, 'Chats');
      const row = ben.page.locator(`#conversation-list li[data-conversation^="user:"]`, { hasText: ann.username });
      await row.getByRole('img', { name: 'muted' }).waitFor();
      await ben.page.getByRole('button', { name: 'Edit profile' }).click(); // the chat closes
      const before = await beeps(ben.page);
      await ben.page.evaluate(() => { window.notes.length = 0; });
      await sendText(ann.page, 'muted news');
      await eventually(async () => (await ben.page.title()) === '(1) natter', 'the count in the title');
      await showPanel(ben.page, 'Chats');
      await row.locator('.badge.unread', { hasText: '1' }).waitFor();
      await shot(ben.page, `attention-${size}-02-muted`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await notes(ben.page), []);
      assert.equal(await beeps(ben.page), before);

      // Unmuted (live on a reload too: the server keeps it), the next message is announced again.
      await ben.page.reload();
      await waitOnline(ben.page);
      await row.getByRole('img', { name: 'muted' }).waitFor();
      await row.getByRole('button').click();
      await ben.page.getByRole('button', { name: 'Unmute', exact: true }).click();
      await ben.page.getByRole('button', { name: 'Mute', exact: true }).waitFor();
      await ben.page.getByRole('button', { name: 'Edit profile' }).click();
      await sendText(ann.page, 'loud news');
      await eventually(async () => (await notes(ben.page)).length === 1, 'a notification after unmuting');
    });

    await ann.context.close();
    await ben.context.close();
  });
}
