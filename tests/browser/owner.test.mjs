// A group's owner and its members: only the owner sees the settings; renaming and a new picture
// reach the members live; the owner removes a member, whose group goes from their lists with a
// notice that goes by itself; a member leaves and the owner's member list and online count
// follow; the owner disbands after a confirmation step, and the remaining member's group goes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newUser, uniqueName, sendText, waitForMessage, shot, showPanel, eventually, makePng,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

/** `user` finds the group by its name and joins it; the chat opens. */
async function joinGroup(user, name) {
  await showPanel(user.page, 'Groups');
  await user.page.getByLabel('Find groups').fill(name);
  await user.page.locator('#group-search-form').getByRole('button', { name: 'Search' }).click();
  await user.page.getByRole('button', { name: `Join ${name}` }).click();
  await user.page.locator('#chat-title', { hasText: name }).waitFor();
  await user.page.locator(`#group-list li[data-group="${name}"]`).waitFor();
}

/** The group's rows in a user's group list and conversation list. */
function rows(page, name) {
  return {
    group: page.locator(`#group-list li[data-group="${name}"]`),
    conversation: page.locator('#conversation-list li[data-conversation^="group:"]', { hasText: name }),
  };
}

test('an owner manages a group; members leave or are removed', async (t) => {
  const olga = await newUser(browser, 'olga');
  const mia = await newUser(browser, 'mia');
  const nick = await newUser(browser, 'nick');
  const first = uniqueName('anglers');
  const renamed = uniqueName('summit');

  await t.test('olga creates a group, mia joins, and only olga sees the owner controls', async () => {
    await showPanel(olga.page, 'Groups');
    await olga.page.getByLabel('New group name').fill(first);
    await olga.page.getByRole('button', { name: 'Create group' }).click();
    await olga.page.locator('#chat-title', { hasText: first }).waitFor();
    await joinGroup(mia, first);
    await olga.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();

    await olga.page.getByRole('button', { name: 'Group settings' }).waitFor();
    assert.equal(await olga.page.getByRole('button', { name: 'Leave group' }).count(), 0);
    await mia.page.getByRole('button', { name: 'Leave group' }).waitFor();
    assert.equal(await mia.page.getByRole('button', { name: 'Group settings' }).count(), 0);

    // mia sees the members, without Remove buttons; olga sees one next to mia, not herself.
    await mia.page.getByRole('button', { name: 'Members' }).click();
    await mia.page.locator(`#member-list li[data-user="${olga.username}"]`).waitFor();
    assert.equal(await mia.page.locator('#member-list button').count(), 0);
    await olga.page.getByRole('button', { name: 'Members' }).click();
    await olga.page.getByRole('button', { name: `Remove ${mia.username} from the group` }).waitFor();
    assert.equal(await olga.page.locator('#member-list button').count(), 1);

    // A message, so the group is in both conversation lists.
    await sendText(mia.page, 'Hello anglers');
    await waitForMessage(olga.page, 'Hello anglers');
    await showPanel(mia.page, 'Chats');
    await rows(mia.page, first).conversation.waitFor();
  });

  await t.test('olga renames the group and sets its picture; mia sees both live', async () => {
    await olga.page.getByRole('button', { name: 'Group settings' }).click();
    const nameBox = olga.page.getByLabel('Group name', { exact: true });
    await nameBox.waitFor();
    assert.equal(await nameBox.inputValue(), first);
    // The keyboard reaches the form: the focus starts in the name box.
    assert.equal(await olga.page.evaluate(() => document.activeElement.id), 'group-edit-name');
    await nameBox.fill(renamed);
    await olga.page.getByLabel('Group picture').setInputFiles({
      name: 'group.png', mimeType: 'image/png', buffer: makePng(64, [40, 160, 90]),
    });
    await olga.page.getByRole('button', { name: 'Save group' }).click();
    await olga.page.locator('#group-edit-status', { hasText: 'Group saved.' }).waitFor();
    await olga.page.locator('#chat-title', { hasText: renamed }).waitFor();
    await shot(olga.page, 'owner-01-settings-saved');

    await mia.page.locator('#chat-title', { hasText: renamed }).waitFor();
    await mia.page.locator('#chat-avatar .avatar img').waitFor();
    await showPanel(mia.page, 'Chats');
    await rows(mia.page, renamed).conversation.waitFor();
    await showPanel(mia.page, 'Groups');
    await rows(mia.page, renamed).group.waitFor();
    assert.equal(await rows(mia.page, first).group.count(), 0);
    await shot(mia.page, 'owner-02-member-sees-rename');
  });

  await t.test('olga removes mia: the group leaves mia\'s lists and her chat closes', async () => {
    // Keeping her first: the dialog's safe answer changes nothing.
    await olga.page.getByRole('button', { name: `Remove ${mia.username} from the group` }).click();
    await olga.page.locator('dialog[open]').getByRole('button', { name: 'Keep member' }).click();
    await olga.page.locator(`#member-list li[data-user="${mia.username}"]`).waitFor();
    await olga.page.getByRole('button', { name: `Remove ${mia.username} from the group` }).click();
    await olga.page.locator('dialog[open]').getByRole('button', { name: 'Remove member' }).click();
    await olga.page.locator(`#member-list li[data-user="${mia.username}"]`).waitFor({ state: 'detached' });
    await olga.page.locator('#chat-presence', { hasText: '1 online' }).waitFor();

    const toast = mia.page.locator('#notices .notice', { hasText: `You were removed from ${renamed}` });
    await toast.waitFor();
    const shown = Date.now();
    await mia.page.locator('#chat').waitFor({ state: 'hidden' });
    await rows(mia.page, renamed).group.waitFor({ state: 'detached' });
    await showPanel(mia.page, 'Chats');
    await rows(mia.page, renamed).conversation.waitFor({ state: 'detached' });
    await shot(mia.page, 'owner-03-member-removed');

    // The notice goes by itself after about five seconds.
    await toast.waitFor({ state: 'detached', timeout: 12_000 });
    const lasted = Date.now() - shown;
    assert.ok(lasted > 3000 && lasted < 9000, `the notice lasted ${lasted} ms`);
  });

  await t.test('nick joins and leaves; olga\'s member list and online count follow', async () => {
    await joinGroup(nick, renamed);
    await olga.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
    await olga.page.locator(`#member-list li[data-user="${nick.username}"]`).waitFor();
    await sendText(nick.page, 'Hi, just passing');
    await waitForMessage(olga.page, 'Hi, just passing');

    await nick.page.getByRole('button', { name: 'Leave group' }).click();
    await nick.page.locator('#notices .notice', { hasText: `You left ${renamed}` }).waitFor();
    await nick.page.locator('#chat').waitFor({ state: 'hidden' });
    await rows(nick.page, renamed).group.waitFor({ state: 'detached' });

    await olga.page.locator(`#member-list li[data-user="${nick.username}"]`).waitFor({ state: 'detached' });
    await olga.page.locator('#chat-presence', { hasText: '1 online' }).waitFor();
    await eventually(async () => (await olga.page.locator('#member-list li').count()) === 1, 'olga alone in the list');
    await shot(olga.page, 'owner-04-member-left');
  });

  await t.test('nick joins again and sees the history afresh', async () => {
    await joinGroup(nick, renamed);
    await waitForMessage(nick.page, 'Hi, just passing');
    await olga.page.locator('#chat-presence', { hasText: '2 online' }).waitFor();
  });

  await t.test('olga disbands after a confirmation step; nick\'s group goes', async () => {
    const disband = olga.page.getByRole('button', { name: /^Disband group/ });
    // By keyboard: the question takes the focus to "Keep the group"; Escape backs out.
    await disband.focus();
    await olga.page.keyboard.press('Enter');
    await olga.page.locator('#disband-confirm').waitFor();
    assert.match(await olga.page.locator('#disband-question').textContent(), new RegExp(renamed));
    assert.equal(await olga.page.evaluate(() => document.activeElement.id), 'disband-no');
    await shot(olga.page, 'owner-05-disband-confirm');
    await olga.page.keyboard.press('Escape');
    await olga.page.locator('#disband-confirm').waitFor({ state: 'hidden' });
    assert.equal(await olga.page.evaluate(() => document.activeElement.id), 'disband-button');
    await olga.page.locator('#chat-title', { hasText: renamed }).waitFor();

    await disband.click();
    await olga.page.getByRole('button', { name: 'Disband for everyone' }).click();
    await olga.page.locator('#chat').waitFor({ state: 'hidden' });
    await rows(olga.page, renamed).group.waitFor({ state: 'detached' });
    await olga.page.locator('#notices .notice', { hasText: `You disbanded ${renamed}` }).waitFor();
    assert.equal(await olga.page.locator('#notices .notice', { hasText: renamed }).count(), 1);

    const toast = nick.page.locator('#notices .notice', { hasText: `${renamed} was disbanded` });
    await toast.waitFor();
    await nick.page.locator('#chat').waitFor({ state: 'hidden' });
    await rows(nick.page, renamed).group.waitFor({ state: 'detached' });
    await showPanel(nick.page, 'Chats');
    await rows(nick.page, renamed).conversation.waitFor({ state: 'detached' });
    await shot(nick.page, 'owner-06-disbanded');

    // The notice can be dismissed at once, from the keyboard.
    await toast.getByRole('button', { name: 'Dismiss notice' }).focus();
    await nick.page.keyboard.press('Enter');
    await toast.waitFor({ state: 'detached', timeout: 1000 });
  });

  await Promise.all([olga, mia, nick].map((user) => user.context.close()));
});
