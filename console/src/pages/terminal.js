// Terminal: a shell on one instance in the browser, through the agent's
// own outbound link (no port opened on the instance). xterm.js draws it;
// the window's size follows the page (fit addon → resize message); copy
// and paste by keys (Ctrl+Shift+C / Ctrl+Shift+V) or buttons. A refusal
// shows the engine's reason, and the end of the session its exit status.
// Without an instance in the address it asks which one and as whom.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, errorBox, field, toast } from '../dom.js';
import { openTerminal, screenText } from '../term/xterm.js';
import { SessionLink } from '../term/link.js';

/** Login names the agent could switch to (a POSIX-ish user name). */
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;

export async function render(main, ctx) {
  const instanceId = ctx.params.id || ctx.query.get('instance') || '';
  const user = (ctx.query.get('user') || 'root').trim();
  if (!instanceId) return picker(main, ctx);
  if (!USER_RE.test(user)) {
    put(main, h('h1', {}, 'Terminal'), errorBox({ code: 'InvalidParameterValue', message: `"${user}" is not a user name` }));
    return undefined;
  }
  return terminal(main, instanceId, user);
}

async function picker(main, ctx) {
  await can.load(['StartSession']);
  const [insts, agents] = await Promise.all([
    api.all('DescribeRegisterInstances', {}, 'RegisterInstanceSet'),
    api.all('DescribeAutomationAgentStatus', {}, 'AutomationAgentSet'),
  ]);
  const online = new Set(agents.filter(a => a.AgentStatus === 'Online').map(a => a.InstanceId));
  const sel = h('select', { required: true },
    insts.map(i => h('option', { value: i.InstanceId, disabled: !online.has(i.InstanceId) },
      `${i.InstanceName || i.InstanceId} (${i.InstanceId})${online.has(i.InstanceId) ? '' : ' — offline'}`)));
  const first = insts.find(i => online.has(i.InstanceId));
  if (first) sel.value = first.InstanceId;
  const login = h('input', { value: 'root', required: true, autocomplete: 'off', spellcheck: 'false' });
  const go = h('button', { type: 'submit', class: 'primary' }, 'Open terminal');
  put(main,
    h('h1', {}, 'Terminal'),
    insts.length
      ? h('form', {
        class: 'card term-pick',
        onsubmit: ev => {
          ev.preventDefault();
          ctx.navigate(`terminal/${encodeURIComponent(sel.value)}?user=${encodeURIComponent(login.value.trim())}`);
        },
      },
      field('Instance', sel),
      field('Log in as', login, 'The account the shell runs as on the instance (the agent must run as root to switch users).'),
      can.guard(go, 'StartSession'))
      : h('p', {}, 'No instances are registered yet. ', h('a', { href: '#/instances?add=1' }, 'Add instances')));
  return undefined;
}

function terminal(main, instanceId, user) {
  const status = h('span', { class: 'live', role: 'status' }, 'connecting…');
  const notice = h('div', { 'aria-live': 'assertive' });
  const box = h('div', { class: 'term-box', dataset: { instance: instanceId } });
  const reconnect = h('button', { type: 'button', hidden: true, onclick: () => connect() }, 'Reconnect');
  const disconnect = h('button', { type: 'button', onclick: () => link && link.close() }, 'Disconnect');
  const copy = h('button', {
    type: 'button', title: 'Ctrl+Shift+C',
    onclick: async () => {
      // The selection, or the whole screen when nothing is selected.
      const text = t.term.getSelection() || screenText(t.term).replace(/\s+$/, '');
      try { await navigator.clipboard.writeText(text); toast('Copied'); } catch { toast('The browser refused the clipboard', 'bad'); }
      t.term.focus();
    },
  }, 'Copy');
  const paste = h('button', {
    type: 'button', title: 'Ctrl+Shift+V',
    onclick: async () => {
      try { t.term.paste(await navigator.clipboard.readText()); } catch { toast('The browser refused the clipboard: use Ctrl+Shift+V', 'bad'); }
      t.term.focus();
    },
  }, 'Paste');
  put(main,
    h('div', { class: 'page-head' },
      h('h1', {}, 'Terminal ', h('span', { class: 'mono' }, instanceId), h('span', { class: 'muted small' }, ` as ${user}`)),
      status),
    h('div', { class: 'toolbar' }, copy, paste, disconnect, reconnect,
      h('a', { href: '#/sessions', class: 'small' }, 'Recorded sessions')),
    notice, box);
  main.classList.add('term-view');

  const t = openTerminal(box, { label: `Terminal on ${instanceId} as ${user}` });
  const term = t.term;
  t.fit.fit();
  let link = null;
  let ended = false;

  const setStatus = (text, cls = '') => { put(status, text); status.className = `live ${cls}`; };
  const note = line => term.write(`\r\n\x1b[2m[${line}]\x1b[0m\r\n`);

  function connect() {
    ended = false;
    reconnect.hidden = true;
    disconnect.hidden = false;
    put(notice);
    setStatus('connecting…');
    term.reset();
    const mine = new SessionLink({ instanceId, user, cols: term.cols, rows: term.rows }, {
      data: bytes => term.write(bytes),
      opened: id => {
        setStatus(`● connected${id ? ` · ${id}` : ''}`, 'live');
        box.dataset.session = id;
        term.focus();
      },
      exit: ({ code, signal }) => {
        ended = true;
        const how = signal !== null && signal !== undefined ? `killed by signal ${signal}` : `exit code ${code ?? 'unknown'}`;
        note(`session ended: ${how}`);
        setStatus(`session ended (${how})`, 'ended');
        box.dataset.exit = String(code ?? '');
      },
      error: e => {
        ended = true;
        // A session the server ended (idle, too long, an administrator, the
        // agent gone) is no refusal; either way the reason is shown.
        const closed = e.code === 'FailedOperation.SessionClosed';
        put(notice, errorBox(e));
        setStatus(closed ? 'session closed' : 'refused', 'ended');
        note(`${closed ? 'session closed' : e.code}: ${e.message}`);
      },
      closed: ({ opened, code, reason }) => {
        if (link === mine) link = null;
        reconnect.hidden = false;
        disconnect.hidden = true;
        if (ended) return;
        const why = reason || (opened ? 'the connection was lost' : 'the server did not open the session');
        note(`disconnected: ${why}`);
        setStatus(`disconnected (${code})`, 'ended');
        if (!opened) put(notice, errorBox({ message: `The terminal could not be opened: ${why}.` }));
      },
    });
    link = mine;
  }

  term.onData(d => link && link.send(d));
  term.onBinary(d => link && link.send(Uint8Array.from(d, c => c.charCodeAt(0) & 0xff)));
  // The size is also on the box, for people inspecting the page and tests.
  const showSize = () => { box.dataset.cols = String(term.cols); box.dataset.rows = String(term.rows); };
  showSize();
  term.onResize(({ cols, rows }) => { showSize(); if (link) link.resize(cols, rows); });
  // The terminal follows its box (window resizes, the menu opening).
  let frame = 0;
  const ro = new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => { try { t.fit.fit(); } catch { /* detached */ } });
  });
  ro.observe(box);
  connect();
  return () => {
    ro.disconnect();
    cancelAnimationFrame(frame);
    if (link) link.close();
    t.dispose();
    main.classList.remove('term-view');
  };
}
