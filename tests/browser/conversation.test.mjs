// Reading and writing a conversation, at desktop and phone sizes, with three people: runs of one
// sender share a name, days are parted, links are safe, drafts and the chat's URL survive switching
// and reloading, images pasted or dropped are sent, and the message menu recalls by keyboard. Also
// the bugs seen before: the raw id after a recall, "someone is typing", a typing indicator that
// lingered after the message, the newest image under the composer, a refused upload's preview.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, openChatWith, sendText, waitForMessage, bodies, shot, showPanel, eventually,
  makePng, createGroup, joinGroup, openGroup, userId, uniqueName, waitOnline, VIEWPORTS,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Whether `element` lies wholly inside the message scroller's visible part. */
function fullyInView(locator) {
  return locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    const view = document.getElementById('message-scroller').getBoundingClientRect();
    return box.height > 0 && box.top >= view.top - 1 && box.bottom <= view.bottom + 1;
  });
}

/** Puts a file in a DataTransfer and fires `type` (paste or drop) at `selector` in the page. */
function fireTransfer(page, selector, type, name, mime, bytes) {
  return page.evaluate(({ selector, type, name, mime, bytes }) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
    const target = document.querySelector(selector);
    if (type === 'paste') {
      target.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
    } else {
      for (const kind of ['dragenter', 'dragover', 'drop']) {
        target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }
    }
  }, { selector, type, name, mime, bytes: [...bytes] });
}

for (const { name: size, options } of VIEWPORTS) {
  test(`a conversation at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    const cai = await newUser(browser, `cai-${size[0]}`, options);
    const alerts = [];
    for (const user of [ann, ben, cai]) user.page.on('dialog', (dialog) => { alerts.push(dialog.message()); dialog.dismiss(); });
    await befriend(ann, ben);
    const benId = await userId(ben.page);
    await openChatWith(ann.page, ben.username);
    await openChatWith(ben.page, ann.username);

    await t.test('one sender\'s run shows the name once, under a "Today" separator', async () => {
      for (const text of ['first of three', 'second of three', 'third of three']) await sendText(ann.page, text);
      await waitForMessage(ben.page, 'third of three');
      const run = ben.page.locator('#message-list .msg.theirs');
      await eventually(async () => (await run.count()) === 3, 'three messages');
      assert.deepEqual(await run.evaluateAll((items) => items.map((item) => item.classList.contains('continued'))), [false, true, true]);
      assert.equal(await ben.page.locator('#message-list .msg.theirs .meta:not(.visually-hidden)').count(), 1);
      assert.deepEqual(await ben.page.locator('#message-list li.day').allTextContents(), ['Today']);
      // Older days are named too (what the separators say for history from earlier days).
      const labels = await ben.page.evaluate(async () => {
        const { dayLabel } = await import('/web/dom.js');
        const now = new Date();
        return [dayLabel(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1, 12).getTime()),
          dayLabel(new Date(2020, 2, 14, 12).getTime())];
      });
      assert.equal(labels[0], 'Yesterday');
      assert.match(labels[1], /14/);
      assert.match(labels[1], /2020/);
      await sendText(ben.page, 'an answer');
      await waitForMessage(ann.page, 'an answer');
      await sendText(ann.page, 'after the answer');
      await waitForMessage(ben.page, 'after the answer');
      // A new run after the other person spoke: the name is shown again.
      assert.equal(await ben.page.locator('#message-list .msg.theirs .meta:not(.visually-hidden)').count(), 2);
    });

    await t.test('http(s) links are clickable and safe; HTML and javascript: stay text', async () => {
      const text = 'see https://example.com/a_b?x=1, then <img src=x onerror=alert(1)> or javascript:alert(2)';
      await sendText(ann.page, text);
      await waitForMessage(ben.page, 'javascript:alert(2)');
      const body = ben.page.locator('#message-list .msg .body', { hasText: 'javascript:alert(2)' });
      assert.equal(await body.textContent(), text);
      const links = body.locator('a');
      assert.equal(await links.count(), 1);
      assert.equal(await links.getAttribute('href'), 'https://example.com/a_b?x=1');
      assert.equal(await links.textContent(), 'https://example.com/a_b?x=1');
      assert.equal(await links.getAttribute('target'), '_blank');
      assert.equal(await links.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await ben.page.locator('#message-list img:not(.thumb)').count(), 0);
      assert.equal(await ben.page.locator('#message-list a[href^="javascript"]').count(), 0);
      assert.deepEqual(alerts, []);
      await shot(ben.page, `conversation-${size}-01-runs-and-links`);
    });

    const group = uniqueName('porch');
    await t.test('drafts stay with their chat across switches and reloads; the URL names the chat', async () => {
      assert.equal(await ann.page.evaluate(() => location.hash), `#/chat/user:${benId}`);
      await ann.page.getByLabel('Message', { exact: true }).fill('half a thought');
      await createGroup(ann, group);
      assert.match(await ann.page.evaluate(() => location.hash), /^#\/chat\/group:\d+$/);
      assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), '');
      await ann.page.getByLabel('Message', { exact: true }).fill('for the group, later');

      await ann.page.goBack();
      if (size === 'desktop') {
        await ann.page.locator('#chat-title', { hasText: ben.username }).waitFor();
        assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), 'half a thought');
      } else {
        // On a phone the chat with ben was left for the lists, which is where back leads.
        await ann.page.locator('#main-view[data-screen="list"] .sidebar').waitFor();
        assert.equal(await ann.page.locator('#chat').isVisible(), false);
      }
      await ann.page.goForward();
      await ann.page.locator('#chat-title', { hasText: group }).waitFor();
      assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), 'for the group, later');

      await ann.page.reload();
      await waitOnline(ann.page);
      await ann.page.locator('#chat-title', { hasText: group }).waitFor();
      assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), 'for the group, later');
      await openChatWith(ann.page, ben.username);
      assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), 'half a thought');
      await ann.page.getByLabel('Message', { exact: true }).press('Enter');
      await waitForMessage(ben.page, 'half a thought');
      assert.equal(await ann.page.getByLabel('Message', { exact: true }).inputValue(), '');
    });

    await t.test('in a group, the typist is named, and the indicator goes when their message comes', async () => {
      await joinGroup(cai, group); // cai is nobody's friend: ann knows only their id at first
      await openGroup(ann.page, group);
      await ann.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
      // Everything the indicator says, from the start.
      await ann.page.evaluate(() => {
        window.typingSaid = [];
        const line = document.getElementById('typing');
        new MutationObserver(() => window.typingSaid.push(line.textContent)).observe(line, { childList: true, characterData: true, subtree: true });
      });
      await cai.page.getByLabel('Message', { exact: true }).pressSequentially('hello porch', { delay: 40 });
      await ann.page.locator('#typing', { hasText: `${cai.username} is typing…` }).waitFor();
      const said = await ann.page.evaluate(() => window.typingSaid.filter(Boolean));
      assert.deepEqual(said.filter((text) => !text.startsWith(cai.username)), [], 'the indicator named nobody');
      await cai.page.getByLabel('Message', { exact: true }).press('Enter');
      await waitForMessage(ann.page, 'hello porch');
      // At once, not the three seconds an indicator otherwise lasts.
      await ann.page.locator('#typing:empty').waitFor({ timeout: 1000 });
    });

    await t.test('the newest image ends wholly in view, for the sender and the reader', async () => {
      for (let i = 1; i <= 12; i += 1) await sendText(cai.page, `filler ${i}`);
      await waitForMessage(ann.page, 'filler 12');
      await cai.page.locator('#composer-file').setInputFiles({ name: 'tall.png', mimeType: 'image/png', buffer: makePng(200) });
      await cai.page.getByRole('button', { name: 'Send image' }).click();
      for (const page of [cai.page, ann.page]) {
        const image = page.locator('#message-list .msg[data-kind="image"] img').last();
        await image.and(page.locator('img[src^="blob:"]')).waitFor();
        await eventually(() => image.evaluate((element) => element.complete && element.naturalWidth > 0), 'the image to decode');
        await eventually(() => fullyInView(image), 'the image wholly in view');
      }
      await shot(ann.page, `conversation-${size}-02-image-in-view`);
    });

    await t.test('an image pasted or dropped into the chat is previewed and sent', async () => {
      const before = await cai.page.locator('#message-list .msg[data-kind="image"]').count();
      await fireTransfer(ann.page, '#composer-text', 'paste', 'pasted.png', 'image/png', makePng(40, [30, 200, 90]));
      await ann.page.locator('#image-preview img[src^="blob:"]').waitFor();
      // On a phone the preview's buttons come first in view; wherever they are, they send.
      await ann.page.getByRole('button', { name: 'Send image' }).click();
      await ann.page.locator('#image-preview').waitFor({ state: 'hidden' });
      await fireTransfer(ann.page, '#chat', 'drop', 'dropped.png', 'image/png', makePng(40, [200, 30, 200]));
      await ann.page.locator('#image-preview img[src^="blob:"]').waitFor();
      await ann.page.getByRole('button', { name: 'Send image' }).click();
      await eventually(async () => (await cai.page.locator('#message-list .msg[data-kind="image"]').count()) === before + 2,
        'two more images for cai');
    });

    await t.test('a refused upload leaves no preview and says why', async () => {
      await ann.page.locator('#composer-file').setInputFiles({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('not an image at all') });
      await ann.page.locator('#image-preview').waitFor();
      await ann.page.getByRole('button', { name: 'Send image' }).click();
      await ann.page.locator('#chat-error:not(:empty)').waitFor();
      assert.equal(await ann.page.locator('#image-preview').isHidden(), true);
      await shot(ann.page, `conversation-${size}-03-refused-upload`);
    });

    await t.test('the message menu: two Tab stops however long the chat; recall by keyboard', async () => {
      const list = ann.page.locator('#message-list');
      assert.ok((await list.locator('li.msg').count()) > 5);
      assert.equal(await list.locator('li.msg[tabindex="0"]').count(), 1);
      assert.ok((await list.locator('button, a[href], [tabindex="0"]').evaluateAll((items) => items.filter((i) => i.tabIndex >= 0 && !i.closest('.msg[tabindex="-1"]')).length)) <= 3);

      await sendText(ann.page, 'take this back');
      await waitForMessage(cai.page, 'take this back');
      const mine = list.locator('li.msg.mine', { hasText: 'take this back' });
      await mine.waitFor();
      await eventually(async () => !(await mine.getAttribute('class')).includes('pending'), 'the message sent');
      await list.locator('li.msg').first().focus();
      await ann.page.keyboard.press('End');
      assert.equal(await mine.evaluate((element) => element === document.activeElement), true);
      await ann.page.keyboard.press('Tab');
      assert.equal(await ann.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'More actions');
      await ann.page.keyboard.press('Enter');
      const item = ann.page.getByRole('menuitem', { name: 'Recall' });
      await item.waitFor();
      // The menu opens on its first action (Reply); Recall is the last, End reaches it.
      assert.equal(await ann.page.getByRole('menuitem', { name: 'Reply' }).evaluate((element) => element === document.activeElement), true);
      await ann.page.keyboard.press('End');
      assert.equal(await item.evaluate((element) => element === document.activeElement), true);
      await shot(ann.page, `conversation-${size}-04-message-menu`);
      await ann.page.keyboard.press('Enter');
      await list.locator('li.msg.mine.recalled').waitFor();
      await cai.page.locator('#message-list .msg.recalled').waitFor();
      assert.ok(!(await bodies(cai.page)).includes('take this back'));
      // On someone else's message one may reply and react, but not recall.
      const theirs = cai.page.locator('#message-list li.msg.theirs:not(.recalled)').last();
      await theirs.hover();
      await theirs.getByRole('button', { name: 'More actions' }).click();
      assert.deepEqual(await cai.page.getByRole('menuitem').allTextContents(), ['Reply', 'React…']);
      await cai.page.keyboard.press('Escape');
    });

    await t.test('after a reload, the chat list says the message was recalled, not its id', async () => {
      for (const user of [ann, cai]) {
        await user.page.reload();
        await waitOnline(user.page);
        await showPanel(user.page, 'Chats');
        const row = user.page.locator('#conversation-list li[data-conversation^="group:"] .last');
        await row.waitFor();
        await eventually(async () => /Message recalled$/.test(await row.textContent()), 'the recall preview');
        assert.doesNotMatch(await row.textContent(), /\d{6,}/);
      }
      await shot(cai.page, `conversation-${size}-05-recalled-preview`);
    });

    await Promise.all([ann, ben, cai].map((user) => user.context.close()));
  });
}
