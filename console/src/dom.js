// DOM helpers. Every string goes in as text (textContent / createTextNode):
// nothing in the console ever assigns innerHTML, so output, names, tags and
// error messages cannot become markup.

/** h('button', {class: 'x', onclick: fn, disabled: true}, 'text', child) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces el's children. */
export function put(el, ...children) {
  return append(clear(el), children);
}

const dtf = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

/** An ISO time from the API, shown in the viewer's own time zone. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return dtf.format(d);
}

export function timeEl(iso) {
  return h('time', { datetime: iso || '' , title: iso || '' }, when(iso));
}

export function ago(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return String(iso);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function duration(startIso, endIso) {
  if (!startIso) return '';
  const a = new Date(startIso).getTime();
  const b = endIso ? new Date(endIso).getTime() : Date.now();
  if (!Number.isFinite(a) || !Number.isFinite(b)) return '';
  const ms = Math.max(0, b - a);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

const STATUS_CLASS = {
  SUCCESS: 'ok', Online: 'ok', RUNNING: 'run', PENDING: 'wait', DELIVERING: 'wait',
  DELIVER_DELAYED: 'wait', CANCELLING: 'wait', SUSPENDED: 'wait', Offline: 'off',
  FAILED: 'bad', TIMEOUT: 'bad', ERROR: 'bad', START_FAILED: 'bad', DELIVER_FAILED: 'bad',
  CANCELLED: 'off', TERMINATED: 'off', PARTIAL_FAILED: 'bad', Allow: 'ok', allow: 'ok',
  deny: 'bad', Deny: 'bad',
};

export function badge(status) {
  const s = String(status || 'UNKNOWN');
  return h('span', { class: `badge ${STATUS_CLASS[s] || 'off'}` }, s.replaceAll('_', ' ').toLowerCase());
}

/** A table with a header row; rows are arrays of cells (Nodes or text). */
export function table(caption, headers, rows, opts = {}) {
  const t = h('table', { class: opts.class || '' },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map(x => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map(r => (r instanceof Node ? r : h('tr', {}, r.map(c => h('td', {}, c)))))),
  );
  return h('div', { class: 'table-wrap' }, t);
}

export function empty(title, hint, ...actions) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), hint ? h('p', {}, hint) : null, actions);
}

export function errorBox(err) {
  const code = err && err.code ? `${err.code}: ` : '';
  return h('div', { class: 'error', role: 'alert' }, code + (err && err.message ? err.message : String(err)));
}

let toastTimer;
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  put(el, text);
  el.className = `toast ${kind} show`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = 'toast'; }, 4000);
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label), input, hint ? h('small', { class: 'hint' }, hint) : null);
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), children);
}

/** A modal dialog (native <dialog>: focus trapping and Escape for free). */
export function dialog(title, body, buttons) {
  const dlg = h('dialog', { 'aria-label': title },
    h('h2', {}, title), body, h('div', { class: 'actions' }, buttons));
  document.body.append(dlg);
  dlg.addEventListener('close', () => dlg.remove());
  dlg.showModal();
  return dlg;
}

export function base64ToBytes(b64) {
  const s = atob(b64 || '');
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function textToBase64(text) {
  const b = new TextEncoder().encode(text);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function base64ToText(b64) {
  return new TextDecoder().decode(base64ToBytes(b64));
}

/** What to call an invocation: its command's name, else its script's first line. */
export function invocationLabel(i) {
  if (i.CommandName) return i.CommandName;
  let first = '';
  try { first = base64ToText(i.CommandContent || '').split('\n').find(l => l.trim()) || ''; } catch { first = ''; }
  first = first.trim();
  if (first.length > 60) first = `${first.slice(0, 57)}…`;
  return first || i.CommandId || i.InvocationId;
}
