// The REST side: the session (kept in localStorage, so every tab of a browser shares it),
// authorized requests that refresh an expired access token once, problem errors, and media
// fetched with the bearer token and shown through object URLs.

const SESSION_KEY = 'natter.session';

/** A refused request: `code` is the problem's stable code, `message` its detail. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `request failed (${status})`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? 'network' : 'unknown');
  }
}

// --- the session ---------------------------------------------------------------------------

export function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY));
    return session && session.access_token ? session : null;
  } catch {
    return null;
  }
}

function saveSession(answer) {
  const session = {
    user: answer.user,
    access_token: answer.access_token,
    refresh_token: answer.refresh_token,
    expires_at: Date.now() + (answer.expires_in || 900) * 1000,
  };
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export function clearSession() {
  localStorage.removeItem(SESSION_KEY);
  for (const url of mediaCache.values()) url.then((u) => u && URL.revokeObjectURL(u));
  mediaCache.clear();
}

/** Calls `listener(session or null)` when another tab signs in, refreshes or signs out. */
export function onSessionChange(listener) {
  window.addEventListener('storage', (event) => {
    if (event.key === SESSION_KEY || event.key === null) listener(loadSession());
  });
}

let sessionEnded = () => {};

/** Calls `listener()` when this tab finds the session over (the refresh token was refused). */
export function onSessionEnded(listener) {
  sessionEnded = listener;
}

/** Keeps the stored user's profile current after an edit. */
export function updateSessionUser(user) {
  const session = loadSession();
  if (!session) return;
  session.user = user;
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

// --- requests ------------------------------------------------------------------------------

async function raw(method, path, { body, token, form } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    payload = form;
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, { detail: 'Cannot reach the server.' });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

export async function register(username, password) {
  return saveSession(await raw('POST', '/api/v1/auth/register', { body: { username, password } }));
}

export async function login(username, password) {
  return saveSession(await raw('POST', '/api/v1/auth/login', { body: { username, password } }));
}

let refreshing = null;

/**
 * Replaces the access token `failed`. Another tab may have refreshed already (refresh tokens are
 * single-use), so the stored session is read again first, under a lock where the browser has one.
 */
function refresh(failed) {
  if (!refreshing) {
    const run = async () => {
      const stored = loadSession();
      if (!stored) throw new ApiError(401, { code: 'unauthorized', detail: 'Signed out.' });
      if (stored.access_token !== failed && stored.expires_at > Date.now() + 5000) return stored;
      try {
        return saveSession(
          await raw('POST', '/api/v1/auth/refresh', { body: { refresh_token: stored.refresh_token } }),
        );
      } catch (error) {
        const again = loadSession();
        if (again && again.access_token !== stored.access_token) return again;
        if (error.status === 401) {
          clearSession();
          sessionEnded();
        }
        throw error;
      }
    };
    const locked = navigator.locks ? navigator.locks.request('natter.refresh', run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/** A fresh access token: refreshed when it expires within half a minute. */
export async function accessToken() {
  const session = loadSession();
  if (!session) throw new ApiError(401, { code: 'unauthorized', detail: 'Signed out.' });
  if (session.expires_at > Date.now() + 30_000) return session.access_token;
  return (await refresh(session.access_token)).access_token;
}

/** An authorized request; an expired or replaced token is refreshed and the request retried once. */
export async function call(method, path, options = {}) {
  const token = await accessToken();
  try {
    return await raw(method, path, { ...options, token });
  } catch (error) {
    if (error.status !== 401) throw error;
    const session = await refresh(token);
    return raw(method, path, { ...options, token: session.access_token });
  }
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, { body: body ?? {} });
export const patch = (path, body) => call('PATCH', path, { body });
export const del = (path) => call('DELETE', path);
export const put = (path, body) => call('PUT', path, { body: body ?? {} });

export function upload(file) {
  const form = new FormData();
  form.append('file', file, file.name || 'image');
  return call('POST', '/api/v1/uploads', { form });
}

export const q = encodeURIComponent;

// --- media ---------------------------------------------------------------------------------

const mediaCache = new Map();

/** An object URL for an upload (`thumb` for the smaller copy), or null when it cannot be had. */
export function mediaUrl(id, thumb = false) {
  const key = `${id}${thumb ? ':thumb' : ''}`;
  if (!mediaCache.has(key)) {
    const load = async () => {
      const path = `/media/${q(id)}${thumb ? '?size=thumb' : ''}`;
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const token = await accessToken();
        const response = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
        if (response.status === 401 && attempt === 0) {
          await refresh(token);
          continue;
        }
        if (!response.ok) return null;
        return URL.createObjectURL(await response.blob());
      }
      return null;
    };
    const promise = load().catch(() => null);
    mediaCache.set(key, promise);
    // A failure is not remembered: the next view asks again.
    promise.then((url) => url || mediaCache.delete(key));
  }
  return mediaCache.get(key);
}
