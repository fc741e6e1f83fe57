// One invocation, live: a row per instance with status, exit code and
// duration, updated by server push (no polling); each output streams in
// with ANSI colours; cancel, suspend and resume (all, or one instance);
// and the results grouped across hosts with a diff between groups. A
// finished task offers "Open a shell here": a terminal on that instance as
// the user the command ran as.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, invocationLabel, badge, duration, bytes, timeEl, errorBox, toast, base64ToText } from '../dom.js';
import { OutputViewer } from '../output.js';
import { stripAnsi } from '../ansi.js';
import { diffLines } from '../diff.js';

const FINAL = new Set(['DELIVER_FAILED', 'START_FAILED', 'SUCCESS', 'FAILED', 'TIMEOUT', 'TASK_TIMEOUT', 'CANCELLED', 'TERMINATED']);
/** Outputs opened by themselves when an invocation is this small. */
const AUTO_OPEN = 6;

export async function render(main, ctx) {
  const id = ctx.params.id;
  await can.load(['CancelInvocation', 'SuspendInvocation', 'ResumeInvocation', 'RunCommand']);
  const title = h('h1', {}, 'Invocation ', h('span', { class: 'mono' }, id));
  const meta = h('div', { class: 'meta' });
  const live = h('span', { class: 'live', 'aria-live': 'polite' }, 'connecting…');
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const jobButtons = [];
  const jobBtn = (label, action, extra = {}) => can.guard(jobButtons[jobButtons.push(h('button', {
    type: 'button', onclick: async ev => {
      ev.target.disabled = true;
      try { await api.call(action, { InvocationId: id, ...extra }); toast(`${label}: requested`); } catch (e) { toast(e.message, 'bad'); }
      ev.target.disabled = false;
    },
  }, label)) - 1], action);
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const tasksPanel = h('div', { role: 'tabpanel', id: 'panel-tasks' });
  const groupsPanel = h('div', { role: 'tabpanel', id: 'panel-groups', hidden: true });
  const tab = (label, panel, selected) => h('button', {
    type: 'button', role: 'tab', 'aria-selected': String(selected), 'aria-controls': panel.id,
    onclick: ev => {
      for (const b of tabs.children) b.setAttribute('aria-selected', String(b === ev.currentTarget));
      tasksPanel.hidden = panel !== tasksPanel;
      groupsPanel.hidden = panel !== groupsPanel;
      if (panel === groupsPanel) loadGroups();
    },
  }, label);
  tabs.append(tab('Instances', tasksPanel, true), tab('Grouped results', groupsPanel, false));

  const tbody = h('tbody', {});
  const outputs = h('div', { class: 'outputs' });
  put(tasksPanel,
    h('div', { class: 'table-wrap' }, h('table', { class: 'tasks' },
      h('caption', { class: 'sr-only' }, 'Tasks of this invocation'),
      h('thead', {}, h('tr', {}, ['Instance', 'Status', 'Exit code', 'Duration', 'Output', ''].map(x => h('th', { scope: 'col' }, x)))),
      tbody)),
    outputs);
  put(main,
    h('div', { class: 'page-head' }, title, live),
    meta, summary,
    h('div', { class: 'actions' },
      jobBtn('Cancel all', 'CancelInvocation'), jobBtn('Suspend', 'SuspendInvocation'), jobBtn('Resume', 'ResumeInvocation')),
    tabs, tasksPanel, groupsPanel);

  const rows = new Map(); // task id -> {tr, cells, viewer}
  let lastInvStatus = '';
  let autoOpened = 0;

  function openOutput(t, label) {
    const r = rows.get(t.InvocationTaskId);
    if (!r || r.viewer) return;
    r.viewer = new OutputViewer(t.InvocationTaskId, label);
    r.panel = h('section', { class: 'card output-card', 'aria-label': `Output of ${label}`, dataset: { instance: t.InstanceId } },
      h('h3', {}, label, ' ', r.badge = badge(t.TaskStatus)), r.viewer.el);
    outputs.append(r.panel);
    r.viewer.show(0);
    r.toggle.textContent = 'Hide output';
  }

  function closeOutput(taskId) {
    const r = rows.get(taskId);
    if (!r || !r.viewer) return;
    r.panel.remove();
    r.viewer = null;
    r.toggle.textContent = 'Show output';
  }

  function update(m) {
    if (m.Type === 'error') { put(summary, errorBox({ code: m.Code, message: m.Message })); return; }
    if (m.Type !== 'invocation') return;
    const inv = m.Invocation;
    put(meta,
      h('span', {}, h('strong', { class: 'mono' }, invocationLabel(inv))), ' · ',
      badge(inv.InvocationStatus), ' · started ', timeEl(inv.CreatedTime),
      inv.Username ? ` · as ${inv.Username}` : '', inv.InvocationSource ? ` · ${inv.InvocationSource}` : '');
    const counts = {};
    for (const t of m.Tasks) counts[t.TaskStatus] = (counts[t.TaskStatus] || 0) + 1;
    put(summary, `${m.Tasks.length} instances: ` + Object.entries(counts).map(([k, v]) => `${v} ${k.toLowerCase().replaceAll('_', ' ')}`).join(', '));
    for (const t of m.Tasks) {
      let r = rows.get(t.InvocationTaskId);
      const label = t.InstanceId;
      if (!r) {
        const cells = Array.from({ length: 6 }, () => h('td', {}));
        const tr = h('tr', { dataset: { instance: t.InstanceId, task: t.InvocationTaskId } }, cells);
        r = { tr, cells, viewer: null, key: '' };
        r.toggle = h('button', { type: 'button', class: 'small', onclick: () => (r.viewer ? closeOutput(t.InvocationTaskId) : openOutput(t, label)) }, 'Show output');
        r.cancel = can.guard(h('button', {
          type: 'button', class: 'small', 'aria-label': `Cancel on ${label}`,
          onclick: async ev => {
            ev.target.disabled = true;
            try { await api.call('CancelInvocation', { InvocationId: id, InstanceIds: [t.InstanceId] }); toast(`Cancelling on ${label}`); } catch (e) { toast(e.message, 'bad'); ev.target.disabled = false; }
          },
        }, 'Cancel'), 'CancelInvocation');
        put(cells[0], h('span', { class: 'mono' }, label));
        r.shell = h('a', {
          class: 'button small', hidden: true, 'aria-label': `Open a shell here on ${label}`,
          href: `#/terminal/${encodeURIComponent(t.InstanceId)}?user=${encodeURIComponent(inv.Username || 'root')}`,
        }, 'Open a shell here');
        put(cells[5], r.toggle, ' ', r.cancel, ' ', r.shell);
        tbody.append(tr);
        rows.set(t.InvocationTaskId, r);
        if (autoOpened < AUTO_OPEN && m.Tasks.length <= AUTO_OPEN) { autoOpened++; openOutput(t, label); }
      }
      const key = `${t.TaskStatus}|${t.ExitCode}|${t.ExecEndTime}|${t.OutputLen}`;
      if (key !== r.key || !FINAL.has(t.TaskStatus)) {
        r.key = key;
        put(r.cells[1], badge(t.TaskStatus), t.ErrorInfo ? h('div', { class: 'muted small' }, t.ErrorInfo) : null);
        put(r.cells[2], ['SUCCESS', 'FAILED', 'TIMEOUT', 'TASK_TIMEOUT'].includes(t.TaskStatus) ? String(t.ExitCode) : '—');
        put(r.cells[3], duration(t.ExecStartTime, t.ExecEndTime || (FINAL.has(t.TaskStatus) ? t.ExecStartTime : null)));
        put(r.cells[4], bytes(t.OutputLen));
        r.cancel.hidden = FINAL.has(t.TaskStatus);
        r.shell.hidden = !FINAL.has(t.TaskStatus);
        if (r.viewer) { r.viewer.grow(t.OutputLen); if (r.badge) { const b = badge(t.TaskStatus); r.badge.replaceWith(b); r.badge = b; } }
      }
    }
    if (FINAL.has(inv.InvocationStatus) || ['SUCCESS', 'FAILED', 'PARTIAL_FAILED', 'TIMEOUT', 'CANCELLED'].includes(inv.InvocationStatus)) {
      if (lastInvStatus !== inv.InvocationStatus && !groupsPanel.hidden) loadGroups();
    }
    // Job control means nothing once every task has ended.
    const ended = m.Tasks.length > 0 && m.Tasks.every(t => FINAL.has(t.TaskStatus));
    for (const b of jobButtons) {
      if (b.closest('.guarded').querySelector('.denied')) continue;
      b.disabled = ended;
      b.title = ended ? 'the invocation has ended' : '';
    }
    lastInvStatus = inv.InvocationStatus;
  }

  let groupsBusy = false;
  // What the panel shows now: an unchanged answer is not drawn again, so a
  // late push does not wipe a difference the user has opened.
  let groupsShown = '';
  async function loadGroups() {
    if (groupsBusy) return;
    groupsBusy = true;
    try {
      const r = await api.groups(id);
      const gs = r.GroupSet || [];
      const key = JSON.stringify(gs.map(g => [g.Count, g.TaskStatus, g.ExitCode, g.OutputLen, g.SampleTaskId, g.InstanceIds]));
      if (key === groupsShown) return;
      groupsShown = key;
      if (!gs.length) { put(groupsPanel, h('p', { class: 'muted' }, 'No results yet.')); return; }
      const pickA = h('select', { 'aria-label': 'First group' });
      const pickB = h('select', { 'aria-label': 'Second group' });
      gs.forEach((g, i) => {
        pickA.append(h('option', { value: String(i) }, `Group ${i + 1}`));
        pickB.append(h('option', { value: String(i) }, `Group ${i + 1}`));
      });
      if (gs.length > 1) pickB.value = '1';
      const diffOut = h('div', { class: 'diff-out' });
      const diffBtn = h('button', {
        type: 'button', onclick: async () => {
          const a = gs[Number(pickA.value)];
          const b = gs[Number(pickB.value)];
          const read = async g => {
            const o = await api.call('DescribeInvocationTaskOutput', { InvocationTaskId: g.SampleTaskId, Offset: 0, Limit: 65536 });
            return stripAnsi(base64ToText(o.Output));
          };
          const [ta, tb] = await Promise.all([read(a), read(b)]);
          put(diffOut, h('pre', { class: 'diff', 'aria-label': 'Difference between the groups' },
            diffLines(ta, tb).map(([op, line]) => h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : 'same' }, `${op} ${line}\n`))));
        },
      }, 'Show difference');
      put(groupsPanel,
        h('p', { class: 'summary' }, gs.map((g, i) => `Group ${i + 1}: ${g.Count} instance${g.Count === 1 ? '' : 's'}, ${g.TaskStatus.toLowerCase()}, exit ${g.ExitCode ?? '—'}`).join(' · ')),
        gs.map((g, i) => h('section', { class: 'card group', dataset: { count: String(g.Count) } },
          h('h3', {}, `Group ${i + 1}: ${g.Count} instance${g.Count === 1 ? '' : 's'} · exit ${g.ExitCode ?? '—'} · `, badge(g.TaskStatus), ` · ${bytes(g.OutputLen)}`),
          h('details', {}, h('summary', {}, 'Instances'), h('p', { class: 'mono small' }, g.InstanceIds.join(', '))),
          h('pre', { class: 'output sample' }, stripAnsi(g.Sample) + (g.OutputLen > g.Sample.length ? '\n…' : '')))),
        gs.length > 1 ? h('div', { class: 'card' }, h('h3', {}, 'Compare groups'), h('div', { class: 'toolbar' }, pickA, ' vs ', pickB, diffBtn), diffOut) : null);
    } catch (e) {
      groupsShown = '';
      put(groupsPanel, errorBox(e));
    } finally {
      groupsBusy = false;
    }
  }

  const push = new api.Push(id, update, s => { put(live, s === 'live' ? '● live' : '○ reconnecting…'); live.className = `live ${s}`; });
  return () => push.close();
}
