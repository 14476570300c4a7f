// Blocking, at desktop and phone size: ann blocks her friend ben after a confirmation; the
// friendship goes on both sides, ann's profile lists ben with Unblock, and ben's friend request
// is refused with a reason; unblocked, ben can ask again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newUser, befriend, showPanel, shot, VIEWPORTS } from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

for (const { name: size, options } of VIEWPORTS) {
  test(`blocking at ${size} size`, async (t) => {
    const ann = await newUser(browser, `ann-${size[0]}`, options);
    const ben = await newUser(browser, `ben-${size[0]}`, options);
    await befriend(ann, ben);

    await t.test('ann blocks ben after a confirmation; both friend lists lose the other', async () => {
      await showPanel(ann.page, 'Friends');
      await ann.page.getByRole('list', { name: 'Your friends' }).getByRole('button', { name: `Block ${ben.username}` }).click();
      const dialog = ann.page.getByRole('dialog', { name: 'Block this person?' });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await ann.page.locator(`#friend-list li[data-user="${ben.username}"]`).waitFor();
      await ann.page.getByRole('list', { name: 'Your friends' }).getByRole('button', { name: `Block ${ben.username}` }).click();
      await dialog.getByRole('button', { name: 'Block', exact: true }).click();
      await ann.page.locator(`#friend-list li[data-user="${ben.username}"]`).waitFor({ state: 'detached' });
      await ben.page.locator(`#friend-list li[data-user="${ann.username}"]`).waitFor({ state: 'detached' });
    });

    await t.test('ann\'s profile lists ben as blocked', async () => {
      await ann.page.getByRole('button', { name: 'Edit profile' }).click();
      await ann.page.getByRole('list', { name: 'Blocked people' }).locator(`li[data-user="${ben.username}"]`).waitFor();
      await shot(ann.page, `blocks-${size}-01-blocked-list`);
    });

    await t.test('ben\'s friend request is refused with a reason', async () => {
      await ben.page.getByLabel('Find people').fill(ann.username);
      await ben.page.locator('#user-search-form').getByRole('button', { name: 'Search' }).click();
      await ben.page.getByRole('button', { name: `Send a friend request to ${ann.username}` }).click();
      await ben.page.locator('#friends-error', { hasText: 'one of you has blocked the other' }).waitFor();
      assert.equal(await ben.page.locator(`#outgoing-requests li[data-user="${ann.username}"]`).count(), 0);
    });

    await t.test('ann unblocks ben; his request goes through', async () => {
      await ann.page.getByRole('button', { name: `Unblock ${ben.username}` }).click();
      await ann.page.getByRole('list', { name: 'Blocked people' }).getByText('Nobody is blocked.').waitFor();
      await ben.page.getByRole('button', { name: `Send a friend request to ${ann.username}` }).click();
      await ben.page.locator(`#outgoing-requests li[data-user="${ann.username}"]`).waitFor();
    });

    await ann.context.close();
    await ben.context.close();
  });
}
