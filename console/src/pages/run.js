// Run: choose instances (pick, by tag selector, or all), write a command or
// pick a saved or public one, fill its parameters (defaults and
// descriptions shown; hidden ones masked), set user, working directory,
// timeout and rate control, optionally save it as a command, and run. The
// live view of the new invocation opens at once.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, field, errorBox, textToBase64, base64ToText, badge, toast } from '../dom.js';

function parseConfs(v) {
  if (!v) return [];
  if (Array.isArray(v)) return v;
  try { const j = JSON.parse(v); return Array.isArray(j) ? j : []; } catch { return []; }
}

function hiddenNames(content) {
  const out = new Set();
  for (const m of content.matchAll(/\{\{\s*tat-hidden:([A-Za-z0-9_-]+)\s*\}\}/g)) out.add(m[1]);
  return out;
}

function paramNames(content) {
  const out = new Set();
  for (const m of content.matchAll(/\{\{\s*(?:tat-hidden:)?([A-Za-z0-9_-]+)\s*\}\}/g)) {
    if (!m[0].includes('tat-secret:')) out.add(m[1]);
  }
  return out;
}

export async function render(main, ctx) {
  await can.load(['RunCommand', 'InvokeCommand', 'CreateCommand']);
  const [insts, agents, cmds] = await Promise.all([
    api.all('DescribeRegisterInstances', {}, 'RegisterInstanceSet'),
    api.all('DescribeAutomationAgentStatus', {}, 'AutomationAgentSet').catch(() => []),
    api.all('DescribeCommands', {}, 'CommandSet').catch(() => []),
  ]);
  const online = new Set(agents.filter(a => a.AgentStatus === 'Online').map(a => a.InstanceId));
  const preselect = new Set(ctx.query.getAll('instance'));

  // --- targets
  const mode = name => h('input', { type: 'radio', name: 'target-mode', value: name, checked: name === 'pick' });
  const modes = { pick: mode('pick'), tag: mode('tag'), all: mode('all') };
  const filter = h('input', { type: 'search', placeholder: 'filter instances', 'aria-label': 'Filter instances' });
  const checks = insts.map(i => {
    const cb = h('input', { type: 'checkbox', value: i.InstanceId, checked: preselect.size ? preselect.has(i.InstanceId) : false });
    const label = h('label', { class: 'pick' }, cb,
      h('span', {}, i.InstanceName || i.InstanceId), ' ', badge(online.has(i.InstanceId) ? 'Online' : 'Offline'),
      ' ', h('span', { class: 'muted mono' }, i.InstanceId),
      (i.Tags || []).map(t => h('span', { class: 'tag' }, `${t.Key}=${t.Value}`)));
    return { i, cb, label };
  });
  const pickAll = h('button', { type: 'button', class: 'small', onclick: () => checks.forEach(c => { if (!c.label.hidden) c.cb.checked = true; }) }, 'Select shown');
  const pickNone = h('button', { type: 'button', class: 'small', onclick: () => checks.forEach(c => { c.cb.checked = false; }) }, 'Clear');
  filter.addEventListener('input', () => {
    const q = filter.value.toLowerCase();
    for (const c of checks) c.label.hidden = !!q && !c.label.textContent.toLowerCase().includes(q);
  });
  const pickBox = h('div', { class: 'picker' },
    h('div', { class: 'toolbar' }, filter, pickAll, pickNone),
    insts.length ? h('div', { class: 'pick-list', role: 'group', 'aria-label': 'Instances' }, checks.map(c => c.label))
      : h('p', { class: 'muted' }, 'No instances registered yet. ', h('a', { href: '#/instances?add=1' }, 'Add instances')));
  const tagSel = h('input', { placeholder: 'role=web, env=prod' });
  const tagBox = h('div', { hidden: true }, field('Tag selector', tagSel, 'Instances whose tags match every key=value (several values: role=web|db).'));
  const allNote = h('p', { class: 'muted', hidden: true }, `Every instance (${insts.length} registered) at the moment the run starts.`);
  const syncMode = () => {
    pickBox.hidden = !modes.pick.checked;
    tagBox.hidden = !modes.tag.checked;
    allNote.hidden = !modes.all.checked;
  };
  Object.values(modes).forEach(m => m.addEventListener('change', () => { syncMode(); reask(); }));

  // --- command
  const saved = h('select', { 'aria-label': 'Saved or public command' },
    h('option', { value: '' }, '— write a new command —'),
    h('optgroup', { label: 'Your commands' }, cmds.filter(c => c.CreatedBy !== 'TAT').map(c => h('option', { value: c.CommandId }, c.CommandName))),
    h('optgroup', { label: 'Public library' }, cmds.filter(c => c.CreatedBy === 'TAT').map(c => h('option', { value: c.CommandId }, c.CommandName))));
  const content = h('textarea', { rows: '8', class: 'mono', spellcheck: 'false', placeholder: 'echo "hello from $(hostname)"' });
  const ctype = h('select', {}, ['SHELL', 'PYTHON', 'POWERSHELL'].map(t => h('option', { value: t }, t)));
  const desc = h('p', { class: 'muted' });
  const paramsBox = h('div', { class: 'params' });
  const user = h('input', { value: 'root', autocomplete: 'off' });
  const workdir = h('input', { placeholder: 'default: the user\'s home' });
  const timeout = h('input', { type: 'number', min: '1', max: '86400', value: '60' });
  const maxConc = h('input', { placeholder: 'e.g. 10 or 25%' });
  const maxErr = h('input', { placeholder: 'e.g. 1 or 5%' });
  const saveAs = h('input', { placeholder: 'name to save it under (optional)' });
  const out = h('div', { 'aria-live': 'polite' });
  const runBtn = h('button', { type: 'submit', class: 'primary' }, 'Run');

  let chosen = null;
  const paramInputs = new Map();
  // The engine's answer for the run as it stands: re-asked whenever the
  // picked instances or the command change, since policies may allow some
  // instances or commands and not others.
  const runGuard = can.guard(runBtn, 'RunCommand');
  let askTimer;
  let askSeq = 0;
  const reask = () => {
    clearTimeout(askTimer);
    askTimer = setTimeout(async () => {
      const mine = ++askSeq;
      const action = chosen ? 'InvokeCommand' : 'RunCommand';
      const res = modes.pick.checked ? checks.filter(c => c.cb.checked).map(c => c.i.InstanceId) : [];
      if (chosen) res.push(chosen.CommandId);
      const d = await can.ask(action, res);
      if (mine === askSeq) can.apply(runGuard, d);
    }, 150);
  };
  const renderParams = () => {
    put(paramsBox);
    paramInputs.clear();
    const text = chosen ? base64ToText(chosen.Content || '') : content.value;
    const hidden = hiddenNames(text);
    let confs = chosen && chosen.EnableParameter ? parseConfs(chosen.DefaultParameterConfs) : [];
    if (!confs.length && chosen && chosen.EnableParameter && chosen.DefaultParameters) {
      try { confs = Object.entries(JSON.parse(chosen.DefaultParameters)).map(([k, v]) => ({ ParameterName: k, ParameterValue: v })); } catch { /* none */ }
    }
    const names = new Set(confs.map(c => c.ParameterName));
    if (!chosen) for (const n of paramNames(text)) if (!names.has(n)) confs.push({ ParameterName: n, ParameterValue: '' });
    if (!confs.length) return;
    paramsBox.append(h('h3', {}, 'Parameters'));
    for (const c of confs) {
      const isHidden = hidden.has(c.ParameterName);
      const inp = h('input', { type: isHidden ? 'password' : 'text', autocomplete: 'off', placeholder: isHidden ? '(hidden value)' : (c.ParameterValue || '') });
      if (!isHidden) inp.value = c.ParameterValue || '';
      paramInputs.set(c.ParameterName, inp);
      paramsBox.append(field(`${c.ParameterName}${isHidden ? ' (hidden)' : ''}`, inp,
        [c.ParameterDescription, isHidden ? 'Masked here and in every record.' : (c.ParameterValue ? `Default: ${c.ParameterValue}` : '')].filter(Boolean).join(' — ')));
    }
  };
  saved.addEventListener('change', () => {
    chosen = cmds.find(c => c.CommandId === saved.value) || null;
    reask();
    content.disabled = !!chosen;
    ctype.disabled = !!chosen;
    if (chosen) {
      content.value = base64ToText(chosen.Content || '') || '(content not shown)';
      ctype.value = chosen.CommandType || 'SHELL';
      if (chosen.Timeout) timeout.value = chosen.Timeout;
      if (chosen.WorkingDirectory) workdir.value = chosen.WorkingDirectory;
      if (chosen.Username) user.value = chosen.Username;
      put(desc, chosen.Description || '');
    } else {
      content.value = '';
      put(desc);
    }
    renderParams();
  });
  content.addEventListener('input', () => { if (!chosen) renderParams(); });
  const pre = ctx.query.get('command');
  if (pre) { saved.value = pre; saved.dispatchEvent(new Event('change')); }

  const form = h('form', {
    class: 'run-form',
    onsubmit: async ev => {
      ev.preventDefault();
      put(out);
      const params = {};
      for (const [k, inp] of paramInputs) if (inp.value !== '') params[k] = inp.value;
      const body = {};
      if (modes.pick.checked) {
        body.InstanceIds = checks.filter(c => c.cb.checked).map(c => c.i.InstanceId);
        if (!body.InstanceIds.length) { put(out, errorBox({ message: 'Choose at least one instance.' })); return; }
      } else if (modes.tag.checked) {
        const targets = tagSel.value.split(',').map(s => s.trim()).filter(Boolean).map(s => {
          const i = s.indexOf('=');
          return i < 0 ? { Key: 'tag-key', Values: [s] } : { Key: `tag:${s.slice(0, i).trim()}`, Values: s.slice(i + 1).split('|').map(x => x.trim()) };
        });
        if (!targets.length) { put(out, errorBox({ message: 'Write a tag selector such as role=web.' })); return; }
        body.Targets = targets;
      } else {
        body.Targets = [{ Key: 'all', Values: [] }];
      }
      if (user.value.trim()) body.Username = user.value.trim();
      if (workdir.value.trim()) body.WorkingDirectory = workdir.value.trim();
      if (maxConc.value.trim()) body.MaxConcurrency = maxConc.value.trim();
      if (maxErr.value.trim()) body.MaxErrors = maxErr.value.trim();
      runBtn.disabled = true;
      try {
        let r;
        if (chosen) {
          r = await api.call('InvokeCommand', { CommandId: chosen.CommandId, Timeout: Number(timeout.value) || undefined, ...body, ...(Object.keys(params).length ? { Parameters: JSON.stringify(params) } : {}) });
        } else {
          if (!content.value.trim()) { put(out, errorBox({ message: 'Write a command to run.' })); runBtn.disabled = false; return; }
          const withParams = paramInputs.size > 0;
          r = await api.call('RunCommand', {
            Content: textToBase64(content.value), CommandType: ctype.value, Timeout: Number(timeout.value) || 60,
            ...(saveAs.value.trim() ? { SaveCommand: true, CommandName: saveAs.value.trim() } : {}),
            ...(withParams ? { EnableParameter: true, Parameters: JSON.stringify(params) } : {}),
            ...body,
          });
        }
        toast('Started');
        ctx.navigate(`invocations/${r.InvocationId}`);
      } catch (e) {
        put(out, errorBox(e));
        runBtn.disabled = false;
      }
    },
  },
  h('fieldset', {}, h('legend', {}, '1. Where'),
    h('div', { class: 'radios', role: 'radiogroup', 'aria-label': 'Target' },
      h('label', {}, modes.pick, ' Pick instances'),
      h('label', {}, modes.tag, ' By tag'),
      h('label', {}, modes.all, ' All instances')),
    pickBox, tagBox, allNote),
  h('fieldset', {}, h('legend', {}, '2. What'),
    field('Saved or public command', saved), desc,
    h('div', { class: 'row' }, field('Command type', ctype)),
    field('Command', content, 'Use {{name}} for a parameter and {{tat-hidden:name}} for one whose value must never be shown or stored.'),
    paramsBox,
    field('Save as command', saveAs, 'Leave empty to run without saving.')),
  h('fieldset', {}, h('legend', {}, '3. How'),
    h('div', { class: 'row' },
      field('Run as user', user),
      field('Working directory', workdir),
      field('Timeout (seconds)', timeout)),
    h('div', { class: 'row' },
      field('Max concurrency', maxConc, 'Run in waves of this many instances.'),
      field('Max errors', maxErr, 'Stop starting new waves after this many failures.'))),
  h('div', { class: 'actions' }, runGuard), out);
  put(main, h('h1', {}, 'Run command'), form);
  syncMode();
  for (const c of checks) c.cb.addEventListener('change', reask);
  pickAll.addEventListener('click', reask);
  pickNone.addEventListener('click', reask);
  if (preselect.size || pre) reask();
}
