// Getting the user's attention for messages that arrive out of view: the unread total in the
// tab's title and as a badge on its icon, desktop notifications, and an optional short beep.
// Nothing is said for the chat being looked at, nor for a muted one.

import * as store from './store.js';
import * as settings from './settings.js';
import { $ } from './dom.js';

const { state } = store;
const TITLE = 'natter';
let openChat = () => {};
let shownCount = null;
let audio = null;
let beepedAt = 0;
const BEEP_GAP_MS = 2000; // a burst (a sync after being away) beeps once, not once a message

/** Starts following the unread total and new messages; `onOpenChat(key)` serves a clicked notification. */
export function init({ onOpenChat }) {
  openChat = onOpenChat;
  store.on('conversations', showUnread);
  store.on('arrived', ({ key, message }) => {
    if (store.isViewing(key) || store.isMuted(key)) return;
    if (settings.get('sound') && Date.now() - beepedAt > BEEP_GAP_MS) {
      beepedAt = Date.now();
      beep();
    }
    if (notificationsOn()) notify(key, message);
  });
  showUnread();
  initSettings();
}

/** The two switches in the profile screen; they apply at once. */
function initSettings() {
  const notifications = $('setting-notifications');
  const sound = $('setting-sound');
  const status = $('settings-status');
  const show = () => {
    notifications.checked = notificationsOn();
    sound.checked = Boolean(settings.get('sound'));
  };
  notifications.addEventListener('change', async () => {
    const answer = await setNotifications(notifications.checked);
    notifications.checked = answer.on;
    status.textContent = answer.reason || (answer.on ? 'Notifications are on.' : 'Notifications are off.');
  });
  sound.addEventListener('change', () => {
    setSound(sound.checked);
    status.textContent = sound.checked ? 'The sound is on.' : 'The sound is off.';
  });
  // The permission can be changed in the browser's own settings meanwhile.
  document.addEventListener('visibilitychange', show);
  show();
}

// --- the title and the icon ----------------------------------------------------------------

function showUnread() {
  const count = state.me ? store.totalUnread() : 0;
  if (count === shownCount) return;
  shownCount = count;
  document.title = count ? `(${count}) ${TITLE}` : TITLE;
  drawIcon(count);
}

/** natter's icon, drawn here so no image file is needed, with a red badge counting the unread. */
function drawIcon(count) {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 64;
  const g = canvas.getContext('2d');
  if (!g) return;
  g.fillStyle = '#2563eb';
  g.beginPath();
  g.roundRect(4, 4, 56, 56, 14);
  g.fill();
  g.fillStyle = '#ffffff';
  g.font = 'bold 40px system-ui, sans-serif';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText('n', 32, 30);
  if (count) {
    g.fillStyle = '#dc2626';
    g.beginPath();
    g.arc(46, 18, 17, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = '#ffffff';
    g.font = 'bold 22px system-ui, sans-serif';
    g.fillText(count > 99 ? '99+' : String(count), 46, 19, 30);
  }
  let link = document.querySelector('link[rel="icon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.append(link);
  }
  link.type = 'image/png';
  link.href = canvas.toDataURL('image/png');
  link.dataset.unread = String(count);
}

// --- notifications -------------------------------------------------------------------------

function notificationsOn() {
  return settings.get('notifications') && 'Notification' in window && Notification.permission === 'granted';
}

async function notify(key, message) {
  await store.loadProfile(message.from);
  const sender = store.userName(message.from);
  const title = key.startsWith('group:') ? `${sender} in # ${store.conversationName(key)}` : sender;
  let body = message.body;
  if (message.kind === 'image') body = 'Sent an image';
  else if (message.kind !== 'text') body = 'Sent a message';
  try {
    const note = new Notification(title, { body: body.slice(0, 200), tag: key });
    note.onclick = () => {
      window.focus();
      openChat(key);
      note.close();
    };
  } catch (error) {
    console.warn('natter: could not show a notification', error);
  }
}

/**
 * Turns desktop notifications on or off. Turning them on asks the browser for permission (it
 * only asks once; afterwards it answers from its site settings). Answers the state now in force,
 * and a reason when they could not be turned on.
 */
async function setNotifications(on) {
  if (!on) {
    settings.set('notifications', false);
    return { on: false };
  }
  if (!('Notification' in window)) return { on: false, reason: 'This browser cannot show notifications.' };
  let permission = Notification.permission;
  if (permission === 'default') permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    settings.set('notifications', false);
    return { on: false, reason: 'The browser blocks notifications from natter: allow them in its site settings.' };
  }
  settings.set('notifications', true);
  return { on: true };
}

// --- sound ---------------------------------------------------------------------------------

/** Turns the beep on or off; turning it on plays one (a user gesture lets the audio start). */
function setSound(on) {
  settings.set('sound', on);
  if (on) beep();
}

/** A short, quiet two-tone beep made with WebAudio (no sound file to fetch). */
function beep() {
  try {
    audio ||= new AudioContext();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const now = audio.currentTime;
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.type = 'sine';
    tone.frequency.setValueAtTime(880, now);
    tone.frequency.setValueAtTime(1320, now + 0.08);
    volume.gain.setValueAtTime(0.001, now);
    volume.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
    volume.gain.exponentialRampToValueAtTime(0.001, now + 0.2);
    tone.connect(volume).connect(audio.destination);
    tone.start(now);
    tone.stop(now + 0.21);
  } catch (error) {
    console.warn('natter: could not play the sound', error);
  }
}
