// This browser's settings (notifications, sound), kept in localStorage so they outlive a reload.

const KEY = 'natter.settings';
const DEFAULTS = { notifications: false, sound: false };

function load() {
  try {
    return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY)) };
  } catch {
    return { ...DEFAULTS };
  }
}

/** The value of setting `name` (its default when never set). */
export function get(name) {
  return load()[name];
}

/** Stores setting `name`. */
export function set(name, value) {
  localStorage.setItem(KEY, JSON.stringify({ ...load(), [name]: value }));
}
