// "What would the engine say?" before the click. Pages declare the actions
// behind their buttons; the server's policy engine answers for the signed-in
// user (POST /console/can) and each guarded button is disabled with the
// engine's reason shown beside it. No policy logic lives here.

import * as api from './api.js';
import { h } from './dom.js';

const cache = new Map();

/** Loads decisions for `actions` ([name] or [{Action, Service}]) in one request. */
export async function load(actions) {
  const ask = actions
    .map(a => (typeof a === 'string' ? { Action: a } : a))
    .filter(a => !cache.has(a.Action));
  if (ask.length) {
    try {
      const r = await api.can(ask);
      for (const a of ask) cache.set(a.Action, r[a.Action] || { Allowed: false, Reason: 'no answer' });
    } catch (e) {
      // Fail closed: without an answer the button stays disabled.
      for (const a of ask) cache.set(a.Action, { Allowed: false, Reason: `cannot check permission: ${e.message}` });
    }
  }
  return Object.fromEntries(actions.map(a => {
    const n = typeof a === 'string' ? a : a.Action;
    return [n, cache.get(n)];
  }));
}

export function forget() { cache.clear(); }

/** Asks (uncached) about `action` on these instance / command ids. */
export async function ask(action, resources) {
  try {
    const r = await api.can([{ Action: action, Resources: resources }]);
    return r[action] || { Allowed: false, Reason: 'no answer' };
  } catch (e) {
    return { Allowed: false, Reason: `cannot check permission: ${e.message}` };
  }
}

/** Most questions one /console/can request carries (the server's limit). */
const BATCH = 64;

/**
 * Asks (uncached) about `action` on each of these instance ids on its own;
 * returns a Map id -> decision. Batched, so a fleet costs a few requests.
 */
export async function askEach(action, ids) {
  const out = new Map();
  const uniq = [...new Set(ids)];
  for (let i = 0; i < uniq.length; i += BATCH) {
    const part = uniq.slice(i, i + BATCH);
    try {
      const r = await api.canList(part.map(id => ({ Action: action, Resources: [id] })));
      part.forEach((id, k) => out.set(id, r[k] || { Allowed: false, Reason: 'no answer' }));
    } catch (e) {
      for (const id of part) out.set(id, { Allowed: false, Reason: `cannot check permission: ${e.message}` });
    }
  }
  return out;
}

/** Shows decision `d` on a wrapper made by guard(). */
export function apply(wrap, d) {
  const button = wrap.firstChild;
  for (const old of wrap.querySelectorAll('.denied')) old.remove();
  button.disabled = !d.Allowed;
  button.title = d.Allowed ? '' : d.Reason;
  if (d.Allowed) { button.removeAttribute('aria-describedby'); return; }
  const id = `why-${Math.random().toString(36).slice(2, 9)}`;
  button.setAttribute('aria-describedby', id);
  wrap.append(h('small', { class: 'denied', id }, `Not allowed — ${d.Reason}`));
}

/**
 * Disables `button` when the engine denies `action`, and returns a wrapper
 * holding the button and (when denied) the reason as visible text.
 */
export function guard(button, action) {
  const wrap = h('span', { class: 'guarded' }, button);
  const d = cache.get(action);
  if (d && !d.Allowed) {
    button.disabled = true;
    const id = `why-${Math.random().toString(36).slice(2, 9)}`;
    button.setAttribute('aria-describedby', id);
    button.title = d.Reason;
    wrap.append(h('small', { class: 'denied', id }, `Not allowed — ${d.Reason}`));
  }
  return wrap;
}
