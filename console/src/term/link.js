// The browser's end of a terminal session: one WebSocket on
// /console/session (signed-in cookie, same origin). Binary frames both ways
// are the terminal's raw bytes; text frames are JSON control messages:
// the browser sends {"type":"resize","cols","rows"}, the server sends
// {"type":"opened","sessionId"}, {"type":"exit","code","signal"} and
// {"type":"error","code","message"} (a refusal says why, then closes).
// The socket carries the session's CSRF token as well as its cookie.

import { csrfToken } from '../api.js';

const enc = new TextEncoder();
/** Input goes in frames of at most this much (a big paste is split). */
const FRAME = 64 * 1024;
/** Keystrokes typed before the shell is up are kept, up to this much. */
const MAX_EARLY = 64 * 1024;

export function sessionUrl({ instanceId, user, cols, rows }) {
  const q = new URLSearchParams({ InstanceId: instanceId, User: user, Cols: String(cols), Rows: String(rows), Csrf: csrfToken() });
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/console/session?${q}`;
}

/**
 * Opens a session. `on` has data(Uint8Array), opened(sessionId),
 * exit({code, signal}), error({code, message}) and closed({opened, code,
 * reason}); closed always comes last, once.
 */
export class SessionLink {
  constructor(params, on) {
    this.on = on;
    this.opened = false;
    this.done = false;
    this.early = [];
    this.earlyBytes = 0;
    this.ws = new WebSocket(sessionUrl(params));
    this.ws.binaryType = 'arraybuffer';
    this.ws.onmessage = ev => this.message(ev.data);
    this.ws.onclose = ev => this.finish(ev.code, ev.reason);
    // An error is always followed by close, which reports it.
    this.ws.onerror = () => {};
  }

  message(data) {
    if (data instanceof ArrayBuffer) {
      this.on.data(new Uint8Array(data));
      return;
    }
    let m;
    try { m = JSON.parse(data); } catch { return; }
    if (!m || typeof m !== 'object') return;
    if (m.type === 'opened') {
      this.opened = true;
      this.sessionId = String(m.sessionId || '');
      this.on.opened(this.sessionId);
      for (const b of this.early) this.ws.send(b);
      this.early = [];
      this.earlyBytes = 0;
    } else if (m.type === 'exit') {
      this.on.exit({ code: m.code ?? null, signal: m.signal ?? null });
    } else if (m.type === 'error') {
      this.on.error({ code: String(m.code || 'InternalError'), message: String(m.message || '') });
    }
  }

  /** Sends keystrokes (a string from xterm.js's onData) or raw bytes. */
  send(input) {
    const bytes = typeof input === 'string' ? enc.encode(input) : input;
    if (this.done || !bytes.length) return;
    if (!this.opened) {
      if (this.earlyBytes + bytes.length <= MAX_EARLY) {
        this.early.push(bytes);
        this.earlyBytes += bytes.length;
      }
      return;
    }
    for (let i = 0; i < bytes.length; i += FRAME) this.ws.send(bytes.subarray(i, i + FRAME));
  }

  resize(cols, rows) {
    if (this.done || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  finish(code, reason) {
    if (this.done) return;
    this.done = true;
    this.on.closed({ opened: this.opened, code, reason: reason || '' });
  }

  close() {
    if (this.done) return;
    this.ws.close(1000, 'closed by the user');
    this.finish(1000, 'closed by the user');
  }
}
