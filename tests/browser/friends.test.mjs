// Friend requests and removal at desktop and phone size: the note field empties once its request
// is sent; removing a friend asks first in a dialog (Escape keeps them); the online count's green
// is readable (4.5:1 or more).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, showPanel, shot, createGroup, uniqueName, eventually, VIEWPORTS,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** The contrast ratio of an element's text against the first opaque background behind it. */
function contrastOf(element) {
  const rgb = (text) => text.match(/[\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  let back = element;
  let background = null;
  while (back) {
    const colour = rgb(getComputedStyle(back).backgroundColor);
    if (colour.length < 4 || colour[3] === 1) {
      background = colour;
      break;
    }
    back = back.parentElement;
  }
  background ||= [255, 255, 255];
  const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}

for (const { name: size, options } of VIEWPORTS) {
  test(`friends at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);

    await t.test('the note is cleared once its request is sent', async () => {
      await befriend(ann, ben, 'we met at the pier');
      assert.equal(await ann.page.getByLabel('Note with friend requests (optional)').inputValue(), '');
    });

    await t.test('removing a friend asks first; Escape and "Keep friend" keep them', async () => {
      await showPanel(ann.page, 'Friends');
      const remove = ann.page.getByRole('button', { name: `Remove ${ben.username} from friends` });
      await remove.click();
      const dialog = ann.page.getByRole('dialog', { name: 'Remove friend?' });
      await dialog.waitFor();
      assert.match(await dialog.textContent(), new RegExp(ben.username));
      assert.equal(await ann.page.evaluate(() => document.activeElement.textContent), 'Keep friend');
      await shot(ann.page, `friends-${size}-01-remove-dialog`);
      await ann.page.keyboard.press('Escape');
      await dialog.waitFor({ state: 'detached' });
      assert.equal(await remove.evaluate((element) => element === document.activeElement), true);
      await remove.click();
      await dialog.getByRole('button', { name: 'Keep friend' }).click();
      await dialog.waitFor({ state: 'detached' });
      await ann.page.waitForTimeout(300);
      await ann.page.locator(`#friend-list li[data-user="${ben.username}"]`).waitFor();
      await ben.page.locator(`#friend-list li[data-user="${ann.username}"]`).waitFor();
    });

    await t.test('confirmed, the friendship ends on both sides', async () => {
      await ann.page.getByRole('button', { name: `Remove ${ben.username} from friends` }).click();
      await ann.page.getByRole('dialog', { name: 'Remove friend?' }).getByRole('button', { name: 'Remove friend' }).click();
      await ann.page.locator(`#friend-list li[data-user="${ben.username}"]`).waitFor({ state: 'detached' });
      await ben.page.locator(`#friend-list li[data-user="${ann.username}"]`).waitFor({ state: 'detached' });
    });

    await t.test('the online count is readable: 4.5:1 or more', async () => {
      await createGroup(ann, uniqueName('dock'));
      const count = ann.page.locator('#chat-presence .online-count', { hasText: '1 online' });
      await count.waitFor();
      // The count is drawn anew as it changes: measure an element still in the page.
      const measure = async (locator) => {
        let ratio = null;
        await eventually(async () => {
          ratio = await locator.evaluate(contrastOf);
          return Number.isFinite(ratio);
        }, 'a contrast measured');
        return ratio;
      };
      const ratio = await measure(count);
      assert.ok(ratio >= 4.5, `the chat's online count has contrast ${ratio.toFixed(2)}`);
      await showPanel(ann.page, 'Groups');
      const listed = ann.page.locator('#group-list .online-count', { hasText: '1 online' });
      await listed.waitFor();
      const listedRatio = await measure(listed);
      assert.ok(listedRatio >= 4.5, `the group list's online count has contrast ${listedRatio.toFixed(2)}`);
    });

    await ann.context.close();
    await ben.context.close();
  });
}
