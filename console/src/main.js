// The console's entry: sign-in, the app shell (navigation, theme follows
// the system), and a hash router that gives each page module the main
// area. Each page is one module under pages/ exporting
// `render(main, ctx)`, which may return a clean-up function (closing its
// push socket) that runs when the user navigates away.

import './style.css';
import * as api from './api.js';
import * as can from './can.js';
import { h, put, errorBox } from './dom.js';
import * as overview from './pages/overview.js';
import * as instances from './pages/instances.js';
import * as run from './pages/run.js';
import * as invocation from './pages/invocation.js';
import * as history from './pages/history.js';
import * as commands from './pages/commands.js';
import * as schedules from './pages/schedules.js';
import * as secrets from './pages/secrets.js';
import * as webhooks from './pages/webhooks.js';
import * as access from './pages/access.js';
import * as audit from './pages/audit.js';
import * as terminal from './pages/terminal.js';
import * as broadcast from './pages/broadcast.js';
import * as sessions from './pages/sessions.js';
import * as replay from './pages/replay.js';
import * as sshkeys from './pages/sshkeys.js';

const PAGES = [
  ['', 'Overview', overview],
  ['instances', 'Instances', instances],
  ['run', 'Run command', run],
  ['history', 'History', history],
  ['terminal', 'Terminal', terminal],
  ['broadcast', 'Broadcast', broadcast],
  ['sessions', 'Sessions', sessions],
  ['ssh', 'SSH keys', sshkeys],
  ['commands', 'Commands', commands],
  ['schedules', 'Schedules', schedules],
  ['secrets', 'Secrets', secrets],
  ['webhooks', 'Webhooks', webhooks],
  ['access', 'Access', access],
  ['audit', 'Audit log', audit],
];

const app = document.getElementById('app');
let me = null;
let cleanup = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  return { parts, query: new URLSearchParams(query || '') };
}

export function navigate(path) {
  location.hash = `#/${path}`;
}

function signInView(message) {
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true, value: '' });
  const pass = h('input', { id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  // Shown when the server answers that this password must be changed first
  // (NeedResetPassword): the same sign-in then carries NewPassword.
  const fresh = h('input', { id: 'login-new', name: 'new-password', type: 'password', autocomplete: 'new-password' });
  const freshField = h('div', { class: 'field', hidden: true }, h('label', { for: 'login-new' }, 'New password'), fresh);
  const err = h('div', { 'aria-live': 'assertive' }, message ? errorBox({ message }) : null);
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'login card',
    onsubmit: async ev => {
      ev.preventDefault();
      submit.disabled = true;
      put(err);
      try {
        await api.login(user.value.trim(), pass.value, freshField.hidden ? '' : fresh.value);
        pass.value = '';
        fresh.value = '';
        await start();
      } catch (e) {
        submit.disabled = false;
        if (e.code === 'AuthFailure.PasswordResetRequired' && freshField.hidden) {
          freshField.hidden = false;
          fresh.required = true;
          put(err, errorBox({ message: 'This password must be changed before you sign in: choose a new one.' }));
          submit.textContent = 'Change password and sign in';
          fresh.focus();
          return;
        }
        put(err, errorBox(e));
        pass.focus();
      }
    },
  },
  h('h1', {}, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'drover'),
  h('p', { class: 'muted' }, 'Sign in to run commands across your fleet.'),
  h('div', { class: 'field' }, h('label', { for: 'login-user' }, 'User name'), user),
  h('div', { class: 'field' }, h('label', { for: 'login-pass' }, 'Password'), pass),
  freshField, err, submit,
  h('p', { class: 'hint' }, 'The account owner signs in as root (password set with drover admin set-password); sub-users with the console password CAM gave them.'));
  put(app, h('main', { class: 'login-wrap', id: 'main' }, form));
  user.focus();
}

function shell() {
  const nav = h('nav', { 'aria-label': 'Main' },
    h('ul', {}, PAGES.map(([path, title]) => h('li', {}, h('a', { href: `#/${path}`, dataset: { path } }, title)))));
  const menu = h('button', {
    type: 'button', class: 'menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'sidebar',
    onclick: () => {
      const open = document.body.classList.toggle('nav-open');
      menu.setAttribute('aria-expanded', String(open));
    },
  }, '☰ Menu');
  const header = h('header', { class: 'topbar' },
    menu,
    h('a', { href: '#/', class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'drover'),
    h('span', { class: 'spacer' }),
    h('span', { class: 'who', id: 'who' }, `Signed in as ${me.UserName}`),
    h('button', { type: 'button', class: 'small', onclick: async () => { await api.logout(); me = null; can.forget(); signInView(); } }, 'Sign out'));
  put(app,
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    header,
    h('div', { class: 'layout' },
      h('aside', { id: 'sidebar' }, nav),
      h('main', { id: 'main', tabindex: '-1' })),
    h('div', { id: 'toast', class: 'toast', role: 'status', 'aria-live': 'polite' }));
}

let routeSeq = 0;

function decode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

async function route() {
  if (!me) return;
  const mine = ++routeSeq;
  const hash = location.hash || '#/';
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  // A dialog belongs to the page it was opened on (the Back button can
  // leave one open over the next page otherwise).
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  document.body.classList.remove('nav-open');
  const { parts, query } = parseHash();
  let mod = null;
  let title = '';
  let params = {};
  // Pages with an id in the path, and the nav entry they belong under.
  let under = parts[0] || '';
  if (parts[0] === 'invocations' && parts[1]) {
    mod = invocation; title = 'Invocation'; params = { id: parts[1] }; under = 'history';
  } else if (parts[0] === 'terminal' && parts[1]) {
    mod = terminal; title = 'Terminal'; params = { id: decode(parts[1]) };
  } else if (parts[0] === 'sessions' && parts[1]) {
    mod = replay; title = 'Replay'; params = { id: decode(parts[1]) };
  } else {
    const hit = PAGES.find(([p]) => p === (parts[0] || ''));
    if (hit) { mod = hit[2]; title = hit[1]; }
  }
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.dataset.path === under;
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  // Each visit renders into its own container, so a slow page that finishes
  // after the user moved on writes into a detached node, not over the new page.
  const view = h('div', { class: 'view' });
  put(main, view);
  if (!mod) {
    put(view, h('h1', {}, 'Not found'), h('p', {}, 'There is no such page. ', h('a', { href: '#/' }, 'Go to the overview')));
  } else {
    document.title = `${title} · drover`;
    put(view, h('p', { class: 'muted loading' }, 'Loading…'));
    try {
      const r = await mod.render(view, { params, query, me, navigate });
      if (typeof r === 'function') {
        if (mine === routeSeq) cleanup = r; else r();
      }
    } catch (e) {
      put(view, h('h1', {}, title), errorBox(e));
    }
  }
  if (mine !== routeSeq) return;
  // Marks which route the page now shows (tests wait on it).
  document.body.dataset.page = hash;
  main.focus({ preventScroll: true });
}

async function start() {
  me = await api.session();
  if (!me) { signInView(); return; }
  shell();
  await route();
}

api.setSignedOutHandler(() => {
  me = null;
  can.forget();
  signInView('Your session has ended. Please sign in again.');
});
window.addEventListener('hashchange', route);
// Keyboard: "g" then a letter jumps to a page (g o, g i, g r, g h, g c, g a, g l).
let pendingG = 0;
window.addEventListener('keydown', ev => {
  const t = ev.target;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  if (ev.key === 'g') { pendingG = Date.now(); return; }
  if (Date.now() - pendingG > 1500) return;
  const map = { o: '', i: 'instances', r: 'run', h: 'history', c: 'commands', s: 'schedules', a: 'access', l: 'audit' };
  if (ev.key in map) { navigate(map[ev.key]); pendingG = 0; }
});
start();
