// Private groups and invite links, at desktop and phone size: a private group is not found by
// search; its owner makes a one-use link, copies it, and another person joins through it in
// their own browser; the used-up link then says so to a third person; made public again (live
// for the member), the group is found by search.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launch, newUser, uniqueName, showPanel, shot, waitOnline, BASE, VIEWPORTS } from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** Searches for groups named `name`; answers the page's error line after the search. */
async function searchGroups(page, name) {
  await showPanel(page, 'Groups');
  await page.getByLabel('Find groups').fill(name);
  await page.locator('#group-search-form').getByRole('button', { name: 'Search' }).click();
}

for (const { name: size, options } of VIEWPORTS) {
  test(`a private group is joined through an invite link at ${size} size`, async (t) => {
    const ada = await newUser(browser, `ada-${size[0]}`, options);
    const bob = await newUser(browser, `bob-${size[0]}`, options);
    const carol = await newUser(browser, `carol-${size[0]}`, options);
    await ada.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    const name = uniqueName('cellar');
    let link;

    await t.test('ada creates a private group; its settings say so', async () => {
      await showPanel(ada.page, 'Groups');
      await ada.page.getByLabel('New group name').fill(name);
      await ada.page.getByLabel('Private', { exact: true }).check();
      await ada.page.getByRole('button', { name: 'Create group' }).click();
      await ada.page.locator('#chat-title', { hasText: name }).waitFor();
      await ada.page.getByRole('button', { name: 'Group settings' }).click();
      assert.equal(await ada.page.getByLabel('Private group').isChecked(), true);
      await ada.page.locator('#group-private-state', { hasText: 'This group is private' }).waitFor();
    });

    await t.test('bob cannot find it by search', async () => {
      await searchGroups(bob.page, name);
      await bob.page.locator('#groups-error', { hasText: 'No group found' }).waitFor();
      assert.equal(await bob.page.getByRole('button', { name: `Join ${name}` }).count(), 0);
    });

    await t.test('ada makes a one-use link for a day and copies it', async () => {
      await ada.page.getByLabel('Expires after').selectOption({ label: '1 day' });
      await ada.page.getByLabel('Uses', { exact: true }).selectOption('1');
      await ada.page.getByRole('button', { name: 'Create invite link' }).click();
      const row = ada.page.locator('#invite-list li.invite');
      await row.waitFor();
      link = (await row.locator('.invite-link').textContent()).trim();
      assert.match(link, new RegExp(`^${BASE.replace(/[.]/g, '\\.')}/#/invite/[A-Za-z0-9_-]+$`));
      await row.getByText('0 of 1 uses').waitFor();
      // The keyboard lands on the new link's Copy button.
      assert.equal(await ada.page.evaluate(() => document.activeElement.textContent), 'Copy');
      await ada.page.keyboard.press('Enter');
      await ada.page.locator('#invite-status', { hasText: 'Link copied.' }).waitFor();
      assert.equal(await ada.page.evaluate(() => navigator.clipboard.readText()), link);
      await shot(ada.page, `invites-${size}-01-link`);
    });

    await t.test('bob opens the link, sees the group and joins; its chat opens', async () => {
      await bob.page.goto(link);
      await waitOnline(bob.page);
      const view = bob.page.locator('#invite-view');
      await view.getByText(name, { exact: true }).waitFor();
      await view.getByText('Private group').waitFor();
      await shot(bob.page, `invites-${size}-02-preview`);
      await bob.page.getByRole('button', { name: 'Join group' }).click();
      await bob.page.locator('#chat-title', { hasText: name }).waitFor();
      assert.equal(await view.isVisible(), false);
      await ada.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
      await showPanel(bob.page, 'Groups');
      await bob.page.locator(`#group-list li[data-group="${name}"]`, { hasText: 'private' }).waitFor();
    });

    await t.test('the used-up link tells carol it does not work', async () => {
      await carol.page.goto(link);
      await waitOnline(carol.page);
      await carol.page.locator('#invite-message', { hasText: 'This invite link does not work' }).waitFor();
      assert.equal(await carol.page.getByRole('button', { name: 'Join group' }).isVisible(), false);
      await shot(carol.page, `invites-${size}-03-used-up`);
      await carol.page.getByRole('button', { name: 'Close' }).click();
      await carol.page.locator('#invite-view').waitFor({ state: 'hidden' });
    });

    await t.test('ada revokes the link and makes the group public: bob sees it live, carol finds it', async () => {
      await ada.page.getByRole('button', { name: 'Revoke invite link 1' }).click();
      await ada.page.locator('#invite-list', { hasText: 'No invite links yet.' }).waitFor();
      await ada.page.getByLabel('Private group').uncheck();
      await ada.page.locator('#group-private-state', { hasText: 'This group is public' }).waitFor();
      await bob.page.locator(`#group-list li[data-group="${name}"]`).waitFor();
      await bob.page.locator(`#group-list li[data-group="${name}"] .tag`, { hasText: 'private' }).waitFor({ state: 'detached' });
      await searchGroups(carol.page, name);
      await carol.page.getByRole('button', { name: `Join ${name}` }).waitFor();
    });

    await Promise.all([ada, bob, carol].map((user) => user.context.close()));
  });
}
