// Broadcast: one terminal per selected instance, side by side, and one
// input line that goes to all of them at once (restart a service on three
// lab machines and watch each answer). Every pane is an ordinary session:
// its own WebSocket on /console/session, decided by the engine on its own
// instance (tat:StartSession), recorded on its own. A pane that is refused
// says why and the others go on. Keys typed into a pane go to that pane
// only, unless "Keys to all" is on.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, errorBox, field } from '../dom.js';
import { openTerminal } from '../term/xterm.js';
import { SessionLink } from '../term/link.js';

/** Login names the agent could switch to (as on the Terminal page). */
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
/** Panes one page opens at most (each is a session and a WebSocket). */
const MAX_PANES = 8;

export async function render(main, ctx) {
  const ids = (ctx.query.get('instances') || '').split(',').map(s => s.trim()).filter(Boolean);
  const user = (ctx.query.get('user') || 'root').trim();
  if (!ids.length) return picker(main, ctx);
  if (!USER_RE.test(user)) {
    put(main, h('h1', {}, 'Broadcast'), errorBox({ code: 'InvalidParameterValue', message: `"${user}" is not a user name` }));
    return undefined;
  }
  if (ids.length > MAX_PANES) {
    put(main, h('h1', {}, 'Broadcast'), errorBox({ code: 'InvalidParameterValue', message: `at most ${MAX_PANES} instances at once` }));
    return undefined;
  }
  return panes(main, [...new Set(ids)], user);
}

async function picker(main, ctx) {
  const [insts, agents] = await Promise.all([
    api.all('DescribeRegisterInstances', {}, 'RegisterInstanceSet'),
    api.all('DescribeAutomationAgentStatus', {}, 'AutomationAgentSet'),
  ]);
  const online = insts.filter(i => agents.some(a => a.InstanceId === i.InstanceId && a.AgentStatus === 'Online'));
  const allowed = await can.askEach('StartSession', online.map(i => i.InstanceId));
  const boxes = online.map(i => {
    const d = allowed.get(i.InstanceId) || { Allowed: false, Reason: 'no answer' };
    const cb = h('input', { type: 'checkbox', value: i.InstanceId, disabled: !d.Allowed });
    return h('label', { class: 'bc-choice' }, cb, ` ${i.InstanceName || i.InstanceId} `,
      h('span', { class: 'mono muted small' }, i.InstanceId),
      d.Allowed ? null : h('small', { class: 'denied' }, ` Not allowed — ${d.Reason}`));
  });
  const login = h('input', { value: 'root', required: true, autocomplete: 'off', spellcheck: 'false' });
  const problem = h('div', { 'aria-live': 'polite' });
  put(main,
    h('h1', {}, 'Broadcast'),
    h('p', { class: 'muted' }, 'A terminal on each chosen instance, and one line typed into all of them.'),
    online.length
      ? h('form', {
        class: 'card term-pick',
        onsubmit: ev => {
          ev.preventDefault();
          const chosen = boxes.map(b => b.querySelector('input')).filter(c => c.checked).map(c => c.value);
          if (!chosen.length) { put(problem, errorBox({ message: 'Choose at least one instance.' })); return; }
          if (chosen.length > MAX_PANES) { put(problem, errorBox({ message: `Choose at most ${MAX_PANES} instances.` })); return; }
          ctx.navigate(`broadcast?instances=${chosen.map(encodeURIComponent).join(',')}&user=${encodeURIComponent(login.value.trim())}`);
        },
      },
      h('fieldset', {}, h('legend', {}, 'Instances (online)'), boxes),
      field('Log in as', login, 'The account every shell runs as.'),
      problem,
      h('button', { type: 'submit', class: 'primary' }, 'Open terminals'))
      : h('p', {}, 'No instance is online. ', h('a', { href: '#/instances' }, 'Instances')));
  return undefined;
}

function panes(main, ids, user) {
  const line = h('input', {
    class: 'bc-input mono', autocomplete: 'off', spellcheck: 'false',
    'aria-label': 'Line to send to every terminal', placeholder: 'a command for every terminal',
  });
  const keysToAll = h('input', { type: 'checkbox', class: 'bc-keys' });
  const grid = h('div', { class: 'bc-grid' });
  put(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Broadcast ', h('span', { class: 'muted small' }, `as ${user}`))),
    h('form', {
      class: 'toolbar bc-line',
      onsubmit: ev => {
        ev.preventDefault();
        for (const p of all) p.send(`${line.value}\r`);
        line.value = '';
      },
    }, line, h('button', { type: 'submit', class: 'primary' }, 'Send to all'),
    h('label', { class: 'small' }, keysToAll, ' Keys to all')),
    grid);
  const all = ids.map(id => pane(grid, id, user, d => {
    if (keysToAll.checked) for (const p of all) p.send(d);
    else return false;
    return true;
  }));
  return () => { for (const p of all) p.close(); };
}

/**
 * One instance's pane. `typed(data)` may take the pane's keystrokes for all
 * panes (returns true); otherwise they go to this pane's session only.
 */
function pane(grid, instanceId, user, typed) {
  const status = h('span', { class: 'live small', role: 'status' }, 'connecting…');
  const box = h('div', { class: 'term-box bc-box', dataset: { instance: instanceId } });
  const notice = h('div', { 'aria-live': 'assertive' });
  grid.append(h('section', { class: 'bc-pane card', 'aria-label': `Terminal on ${instanceId}` },
    h('div', { class: 'bc-head' }, h('span', { class: 'mono' }, instanceId), status), notice, box));
  const t = openTerminal(box, { label: `Terminal on ${instanceId} as ${user}` });
  t.fit.fit();
  const term = t.term;
  let ended = false;
  const setStatus = (text, cls = '') => { put(status, text); status.className = `live small ${cls}`; };
  const link = new SessionLink({ instanceId, user, cols: term.cols, rows: term.rows }, {
    data: bytes => term.write(bytes),
    opened: id => { setStatus(`● ${id}`, 'live'); box.dataset.session = id; },
    exit: ({ code, signal }) => {
      ended = true;
      const how = signal !== null && signal !== undefined ? `killed by signal ${signal}` : `exit code ${code ?? 'unknown'}`;
      setStatus(`ended (${how})`, 'ended');
    },
    error: e => {
      ended = true;
      put(notice, errorBox(e));
      setStatus(e.code === 'FailedOperation.SessionClosed' ? 'closed' : 'refused', 'ended');
      box.dataset.refused = e.code;
    },
    closed: ({ reason }) => { if (!ended) setStatus(`disconnected${reason ? `: ${reason}` : ''}`, 'ended'); },
  });
  term.onData(d => { if (!typed(d)) link.send(d); });
  term.onResize(({ cols, rows }) => link.resize(cols, rows));
  const ro = new ResizeObserver(() => { try { t.fit.fit(); } catch { /* detached */ } });
  ro.observe(box);
  return {
    send: d => link.send(d),
    close: () => { ro.disconnect(); link.close(); t.dispose(); },
  };
}
