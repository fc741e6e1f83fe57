// The console's only way to the server. Every call goes through the
// signed-in session to the same actions the SDKs call (POST /console/api
// with X-TC-Action), with the session's CSRF token on every request; the
// server's policy engine decides. Nothing here knows about permissions.

const TAT = '2020-10-28';
const CAM = '2019-01-16';

export class ApiError extends Error {
  constructor(code, message, requestId) {
    super(message);
    this.code = code;
    this.requestId = requestId;
  }
}

let csrf = sessionStorage.getItem('drover.csrf') || '';
let onSignedOut = () => {};

export function setSignedOutHandler(fn) { onSignedOut = fn; }

/** The signed-in session's CSRF token (the terminal's socket carries it). */
export function csrfToken() { return csrf; }

async function post(path, body, headers = {}) {
  let r;
  try {
    r = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, ...headers },
      body: JSON.stringify(body || {}),
    });
  } catch (e) {
    throw new ApiError('NetworkError', 'the server cannot be reached; check your connection');
  }
  let j;
  try { j = await r.json(); } catch { throw new ApiError('InternalError', `unexpected reply (HTTP ${r.status})`); }
  const resp = j.Response || {};
  if (resp.Error) {
    const err = new ApiError(resp.Error.Code, resp.Error.Message, resp.RequestId);
    if (String(resp.Error.Code).startsWith('AuthFailure.Session')) onSignedOut(err);
    throw err;
  }
  return resp;
}

/** Calls a TAT action (or a CAM one with {cam: true}) as the signed-in user. */
export function call(action, params = {}, opts = {}) {
  return post('/console/api', params, {
    'X-TC-Action': action,
    'X-TC-Version': opts.cam ? CAM : TAT,
  });
}

export const cam = (action, params) => call(action, params, { cam: true });

export async function login(user, password, newPassword) {
  const body = { UserName: user, Password: password };
  if (newPassword) body.NewPassword = newPassword;
  const r = await post('/console/login', body);
  csrf = r.CsrfToken;
  sessionStorage.setItem('drover.csrf', csrf);
  return r;
}

export async function logout() {
  try { await post('/console/logout', {}); } finally {
    csrf = '';
    sessionStorage.removeItem('drover.csrf');
  }
}

export async function session() {
  const r = await fetch('/console/session', { credentials: 'same-origin' });
  const j = await r.json();
  if (j.Response && j.Response.Error) return null;
  if (!csrf) return null; // a new tab: sign in again to get a CSRF token
  return j.Response;
}

/** The ssh gateway's address and host key ({Enabled: false} when it is off). */
export async function sshInfo() {
  let r;
  try {
    r = await fetch('/console/ssh-info', { credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } });
  } catch {
    throw new ApiError('NetworkError', 'the server cannot be reached; check your connection');
  }
  const j = await r.json();
  const resp = j.Response || {};
  if (resp.Error) throw new ApiError(resp.Error.Code, resp.Error.Message, resp.RequestId);
  return resp;
}

/** Asks the engine which of these actions the user may take. */
export async function can(actions) {
  const r = await post('/console/can', { Actions: actions });
  const out = {};
  for (const x of r.Results) out[x.Action] = x;
  return out;
}

/** The engine's answers to these questions, in the order asked. */
export async function canList(questions) {
  const r = await post('/console/can', { Actions: questions });
  return r.Results || [];
}

/** The policy engine's verdict on a draft policy document. */
export async function validatePolicy(doc) {
  const r = await post('/console/validate-policy', { PolicyDocument: doc });
  const m = /line (\d+) column (\d+)/.exec(r.Problem || '');
  if (m) {
    r.Line = Number(m[1]);
    r.Column = Number(m[2]);
    const lines = doc.split('\n');
    r.Offset = lines.slice(0, r.Line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(0, r.Column - 1);
  } else if (r.Path) {
    // Point at the key the engine named (the last segment of its path).
    const key = r.Path.replace(/\[\d+\]/g, '').split('.').pop();
    r.Offset = key ? doc.indexOf(`"${key}"`) : -1;
  }
  return r;
}

export function groups(invocationId) {
  return post('/console/groups', { InvocationId: invocationId });
}

/** Fetches every page of a Describe or List action (Limit/Offset paging). */
export async function all(action, params, setName, opts = {}) {
  const out = [];
  const limit = opts.limit || 100;
  for (let offset = 0; offset < (opts.max || 5000); offset += limit) {
    const r = await call(action, { ...params, Limit: limit, Offset: offset }, opts);
    const set = r[setName] || [];
    out.push(...set);
    if (set.length < limit || out.length >= (r.TotalCount || 0)) break;
  }
  return out;
}

/**
 * The server-push channel (WebSocket on /console/push). One socket per page
 * view; `watch` says what to follow ("*" or an invocation id) and `onmsg`
 * gets each update. It reconnects with backoff if the link drops.
 */
export class Push {
  constructor(watch, onmsg, onstate = () => {}) {
    this.watchId = watch;
    this.onmsg = onmsg;
    this.onstate = onstate;
    this.closed = false;
    this.delay = 500;
    this.open();
  }

  open() {
    if (this.closed) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/console/push`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      this.onstate('live');
      ws.send(JSON.stringify({ Watch: this.watchId }));
    };
    ws.onmessage = ev => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.Type === 'error' && String(m.Code).startsWith('AuthFailure.Session')) {
        this.close();
        onSignedOut(new ApiError(m.Code, m.Message));
        return;
      }
      this.onmsg(m);
    };
    ws.onclose = () => {
      if (this.closed) return;
      this.onstate('reconnecting');
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
