// The master's JSON API (see master/http/api_routes.h). Every call goes to
// the page's own origin; the token cookie, when one is needed, rides along.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path) {
  let res;
  try {
    res = await fetch(path, { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, `cannot reach the master (${e.message})`);
  }
  if (res.status === 401) {
    // Signed out or the token changed: the sign-in form comes back here.
    window.location.assign('/login');
    throw new ApiError(401, 'sign in required');
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body?.error?.message || `${res.status} ${res.statusText}`);
  return body;
}

export const get = (path) => request('GET', path);
export const post = (path) => request('POST', path);
