// The account: refused sign-ins show the server's reason, a profile edit with an avatar, the
// session shared by a second tab, signing out everywhere, and accessible basics of the page.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launch, newContext, openPage, uniqueName, waitOnline, shot, makePng, PASSWORD, BASE,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test('accounts and profiles', async (t) => {
  const context = await newContext(browser, { viewport: { width: 1200, height: 800 } });
  const page = await openPage(context, 'account');
  const username = uniqueName('hana');

  await t.test('every control of the sign-in form is labelled, in a sensible tab order', async () => {
    await page.getByLabel('Username').waitFor();
    const order = [];
    await page.getByLabel('Username').focus();
    for (let i = 0; i < 4; i += 1) {
      order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
      await page.keyboard.press('Tab');
    }
    assert.deepEqual(order, ['auth-username', 'auth-password', 'Log in', 'Register']);
  });

  await t.test('a refused registration or login shows the reason', async () => {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.locator('#auth-error', { hasText: /password/i }).waitFor();
    await page.getByLabel('Password').fill('no-such-password-here');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#auth-error:not(:empty)').waitFor();
    await shot(page, 'account-01-refused');
  });

  await t.test('registering signs in; Enter in the form submits', async () => {
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Register' }).click();
    await waitOnline(page);
    await page.locator('#me-name', { hasText: username }).waitFor();
  });

  await t.test('every input of the signed-in page has a label', async () => {
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, textarea, select')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map((el) => el.id || el.outerHTML));
    assert.deepEqual(unlabelled, []);
    const nameless = await page.evaluate(() =>
      [...document.querySelectorAll('button')]
        .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim()))
        .map((el) => el.outerHTML));
    assert.deepEqual(nameless, []);
  });

  await t.test('the nickname and avatar change and show', async () => {
    await page.getByRole('button', { name: 'Edit profile' }).click();
    await page.getByLabel('Nickname').fill('Hana the Brave');
    await page.getByLabel('Avatar image').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: makePng(96, [40, 120, 220]) });
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.locator('#profile-status', { hasText: 'Profile saved.' }).waitFor();
    await page.locator('#me-name', { hasText: 'Hana the Brave' }).waitFor();
    await page.locator('#me-avatar img[src^="blob:"]').waitFor();
    await shot(page, 'account-02-profile');

    // Others see it too: the public profile carries the avatar.
    const session = await page.evaluate(() => JSON.parse(localStorage.getItem('natter.session')));
    const me = await fetch(`${BASE}/api/v1/me`, { headers: { authorization: `Bearer ${session.access_token}` } }).then((r) => r.json());
    assert.equal(me.nickname, 'Hana the Brave');
    assert.ok(me.avatar);
  });

  let second;
  await t.test('a second tab is signed in as the same user', async () => {
    second = await openPage(context, 'account#2');
    await waitOnline(second);
    await second.locator('#me-name', { hasText: 'Hana the Brave' }).waitFor();
  });

  await t.test('signing out in one tab signs out the other', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Username').waitFor();
    await second.getByLabel('Username').waitFor();
    assert.equal(await second.locator('#main-view').isHidden(), true);
    await second.close();
  });

  await t.test('logging in again works', async () => {
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Password').press('Enter');
    await waitOnline(page);
    await page.locator('#me-name', { hasText: 'Hana the Brave' }).waitFor();
  });

  await context.close();
});
