// Groups: one person creates a group, another finds and joins it; both see the live online count
// and the member list, chat in it, and the count drops when one leaves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, uniqueName, sendText, waitForMessage, shot, showPanel, eventually,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('a group is created, found, joined and shows who is there', async (t) => {
  const carol = await newUser(browser, 'carol');
  const dave = await newUser(browser, 'dave');
  const name = uniqueName('hikers');

  await t.test('carol creates the group and is its one member online', async () => {
    await showPanel(carol.page, 'Groups');
    await carol.page.getByLabel('New group name').fill(name);
    await carol.page.getByRole('button', { name: 'Create group' }).click();
    await carol.page.locator('#chat-title', { hasText: name }).waitFor();
    await carol.page.locator('#chat-presence', { hasText: '1 online' }).waitFor();
  });

  await t.test('dave searches for it and joins', async () => {
    await showPanel(dave.page, 'Groups');
    await dave.page.getByLabel('Find groups').fill(name.slice(0, 12));
    await dave.page.locator('#group-search-form').getByRole('button', { name: 'Search' }).click();
    await dave.page.getByRole('button', { name: `Join ${name}` }).click();
    await dave.page.locator('#chat-title', { hasText: name }).waitFor();
    await dave.page.locator(`#group-list li[data-group="${name}"]`).waitFor();
  });

  await t.test('both see two online, live', async () => {
    await carol.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
    await dave.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
    await showPanel(carol.page, 'Groups');
    await carol.page.locator(`#group-list li[data-group="${name}"] .online-count`, { hasText: '2 online' }).waitFor();
  });

  await t.test('the member list names both, the owner marked', async () => {
    await dave.page.getByRole('button', { name: 'Members' }).click();
    const members = dave.page.locator('#member-list');
    await members.locator(`li[data-user="${carol.username}"]`, { hasText: 'owner' }).waitFor();
    await members.locator(`li[data-user="${dave.username}"]`).waitFor();
    assert.equal(await members.locator('li').count(), 2);
    await shot(dave.page, 'groups-01-members-online');
  });

  await t.test('a group message reaches the other member', async () => {
    await sendText(dave.page, 'Hello hikers');
    await waitForMessage(carol.page, 'Hello hikers');
    await sendText(carol.page, 'Welcome, dave');
    await waitForMessage(dave.page, 'Welcome, dave');
    await eventually(async () => (await dave.page.locator('#message-list .msg', { hasText: 'Hello hikers' }).count()) === 1,
      'one copy of the message');
  });

  await t.test('the group shows as unread in the list until opened', async () => {
    await carol.page.getByRole('button', { name: 'Edit profile' }).click(); // carol looks away
    await sendText(dave.page, 'Anyone there?');
    await showPanel(carol.page, 'Chats');
    const row = carol.page.locator(`#conversation-list li[data-conversation^="group:"]`);
    await row.locator('.badge.unread').waitFor();
    await shot(carol.page, 'groups-02-unread');
    await row.getByRole('button').click();
    await waitForMessage(carol.page, 'Anyone there?');
    await row.locator('.badge.unread').waitFor({ state: 'detached' });
  });

  await t.test('when dave leaves, carol sees one online', async () => {
    await dave.context.close();
    await carol.page.locator('#chat-presence', { hasText: '1 online' }).waitFor();
    await shot(carol.page, 'groups-03-one-left');
  });

  await carol.context.close();
});
