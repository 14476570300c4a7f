// Group roles, at desktop and phone size: the owner adds friends (who see the group at once),
// makes one an admin (who gets the settings live), the admin mutes a plain member (who sees a
// clear error on sending, and the owner sees the mark live) and unmutes them; the group's
// preview in the chat list names who wrote; the owner removes a member after a confirmation.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, befriend, uniqueName, userId, createGroup, openGroup, sendText, waitForMessage, showPanel, shot, VIEWPORTS,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

const row = (page, username) => page.locator(`#group-member-list li[data-user="${username}"]`);

for (const { name: size, options } of VIEWPORTS) {
  test(`roles in a group at ${size} size`, async (t) => {
    const ada = await newUser(browser, `ada-${size[0]}`, options);
    const bob = await newUser(browser, `bob-${size[0]}`, options);
    const cat = await newUser(browser, `cat-${size[0]}`, options);
    await befriend(ada, bob);
    await befriend(ada, cat);
    const name = uniqueName('crew');

    await t.test('ada adds two friends; their lists show the group without a reload', async () => {
      await createGroup(ada, name);
      await ada.page.getByRole('button', { name: 'Group settings' }).click();
      await row(ada.page, ada.username).getByText('owner').waitFor();
      for (const friend of [bob, cat]) {
        await ada.page.getByLabel('Add a friend').selectOption(await userId(friend.page));
        await ada.page.getByRole('button', { name: 'Add to group' }).click();
        await row(ada.page, friend.username).waitFor();
        await friend.page.locator('#notices .notice', { hasText: `added you to ${name}` }).waitFor();
        await showPanel(friend.page, 'Groups');
        await friend.page.locator(`#group-list li[data-group="${name}"]`).waitFor();
      }
      assert.equal(await bob.page.getByRole('button', { name: 'Group settings' }).count(), 0);
    });

    await t.test('ada makes bob an admin: his badge shows and he gets the settings live', async () => {
      await openGroup(bob.page, name);
      await ada.page.getByRole('button', { name: `Make admin: ${bob.username}` }).click();
      await row(ada.page, bob.username).locator('.tag.role', { hasText: 'admin' }).waitFor();
      await bob.page.getByRole('button', { name: 'Group settings' }).click();
      // An admin moderates plain members only, and makes no admins.
      await bob.page.getByRole('button', { name: `Mute ${cat.username}…` }).waitFor();
      assert.equal(await row(bob.page, ada.username).getByRole('button').count(), 0);
      assert.equal(await bob.page.getByRole('button', { name: /^Make / }).count(), 0);
      assert.equal(await bob.page.getByRole('button', { name: /^Disband group/ }).isVisible(), false);
    });

    await t.test('bob mutes cat for an hour by keyboard; cat cannot send, ada sees the mark live', async () => {
      await bob.page.getByRole('button', { name: `Mute ${cat.username}…` }).focus();
      await bob.page.keyboard.press('Enter');
      const oneHour = bob.page.getByRole('button', { name: `Mute ${cat.username} for 1 hour` });
      assert.equal(await oneHour.evaluate((b) => b === document.activeElement), true);
      await shot(bob.page, `roles-${size}-01-mute-choices`);
      await bob.page.keyboard.press('Enter');
      await row(bob.page, cat.username).locator('.tag.muted', { hasText: 'muted until' }).waitFor();
      await row(ada.page, cat.username).locator('.tag.muted').waitFor();
      await shot(ada.page, `roles-${size}-02-owner-sees-muted`);

      await openGroup(cat.page, name);
      await sendText(cat.page, 'can anyone hear me');
      await cat.page.locator('#message-list .msg .error', { hasText: 'has muted you here' }).waitFor();
    });

    await t.test('bob unmutes cat; her message arrives and the list names her', async () => {
      await bob.page.getByRole('button', { name: `Unmute ${cat.username}` }).click();
      await row(ada.page, cat.username).locator('.tag.muted').waitFor({ state: 'detached' });
      await sendText(cat.page, 'see you');
      await waitForMessage(bob.page, 'see you');
      await showPanel(ada.page, 'Chats');
      await ada.page.locator('#conversation-list li[data-conversation^="group:"] .last', { hasText: `${cat.username}: see you` }).waitFor();
    });

    await t.test('ada makes bob a plain member again: his settings go live', async () => {
      await openGroup(ada.page, name);
      // On a phone the chat was left for the list, which closed the settings; on a desktop they stayed open.
      const settings = ada.page.getByRole('button', { name: 'Group settings' });
      if ((await settings.getAttribute('aria-expanded')) !== 'true') await settings.click();
      await ada.page.getByRole('button', { name: `Make member: ${bob.username}` }).click();
      await bob.page.getByRole('button', { name: 'Group settings' }).waitFor({ state: 'hidden' });
      assert.equal(await bob.page.locator('#group-settings').isVisible(), false);
    });

    await t.test('ada removes cat after a confirmation; Cancel keeps her', async () => {
      await ada.page.getByRole('button', { name: `Remove member ${cat.username}` }).click();
      const dialog = ada.page.getByRole('dialog', { name: 'Remove member?' });
      await dialog.getByRole('button', { name: 'Keep member' }).click();
      await dialog.waitFor({ state: 'detached' });
      await row(ada.page, cat.username).waitFor();
      await ada.page.getByRole('button', { name: `Remove member ${cat.username}` }).click();
      await dialog.getByRole('button', { name: 'Remove member' }).click();
      await row(ada.page, cat.username).waitFor({ state: 'detached' });
      await cat.page.locator('#notices .notice', { hasText: `You were removed from ${name}` }).waitFor();
    });

    await Promise.all([ada, bob, cat].map((user) => user.context.close()));
  });
}
