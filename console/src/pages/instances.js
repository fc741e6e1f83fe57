// Instances: every registered machine with its agent's status, version,
// last heartbeat, OS, host, IPs and tags; search and filter; "Add
// instances" makes a register code and shows the one-line agent command;
// "Terminal" opens a shell there, disabled with the engine's reason when
// tat:StartSession is denied on that instance.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, badge, ago, table, empty, errorBox, field, dialog, toast } from '../dom.js';

function tagText(tags) {
  return (tags || []).map(t => `${t.Key}=${t.Value}`).join(', ');
}

export async function render(main, ctx) {
  await can.load(['CreateRegisterCode', 'RunCommand']);
  const search = h('input', { type: 'search', placeholder: 'name, id, host, IP or tag', 'aria-label': 'Search instances' });
  const status = h('select', { 'aria-label': 'Filter by status' },
    h('option', { value: '' }, 'All statuses'), h('option', { value: 'Online' }, 'Online'), h('option', { value: 'Offline' }, 'Offline'));
  const list = h('div', {});
  const addBtn = h('button', { type: 'button', class: 'primary', onclick: () => addDialog() }, 'Add instances');
  put(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Instances'), can.guard(addBtn, 'CreateRegisterCode')),
    h('div', { class: 'toolbar' }, search, status),
    list);
  let rows = [];
  // tat:StartSession per instance, asked once per page view.
  const shellOk = new Map();
  const shellButton = (inst, agent) => {
    const id = inst.InstanceId;
    const btn = h('button', {
      type: 'button', class: 'small', 'aria-label': `Terminal on ${inst.InstanceName || id}`,
      onclick: () => ctx.navigate(`terminal/${encodeURIComponent(id)}`),
    }, 'Terminal');
    const wrap = h('span', { class: 'guarded' }, btn);
    const online = agent && agent.AgentStatus === 'Online';
    const d = !online ? { Allowed: false, Reason: 'the agent is offline' } : shellOk.get(id);
    if (d) can.apply(wrap, d); else { btn.disabled = true; btn.title = 'checking permission…'; }
    return wrap;
  };
  const askShells = async () => {
    const ids = rows.filter(({ agent }) => agent && agent.AgentStatus === 'Online').map(({ inst }) => inst.InstanceId)
      .filter(id => !shellOk.has(id));
    if (!ids.length) return;
    const got = await can.askEach('StartSession', ids);
    for (const [id, d] of got) shellOk.set(id, d);
    show();
  };
  const show = () => {
    const q = search.value.trim().toLowerCase();
    const want = status.value;
    const hits = rows.filter(({ inst, agent }) => {
      if (want && (agent ? agent.AgentStatus : 'Offline') !== want) return false;
      if (!q) return true;
      return [inst.InstanceId, inst.InstanceName, inst.HostName, inst.LocalIp, inst.SystemName, tagText(inst.Tags)]
        .some(v => String(v || '').toLowerCase().includes(q));
    });
    if (!rows.length) {
      put(list, empty('No instances registered', 'Click "Add instances" to get a one-line command that installs the agent on a machine.'));
      return;
    }
    const trs = hits.map(({ inst, agent }) => h('tr', {},
      h('td', {}, h('strong', {}, inst.InstanceName || inst.InstanceId), h('div', { class: 'muted mono' }, inst.InstanceId)),
      h('td', {}, badge(agent ? agent.AgentStatus : 'Offline')),
      h('td', {}, agent ? agent.Version : ''),
      h('td', { title: agent ? agent.LastHeartbeatTime : '' }, agent ? ago(agent.LastHeartbeatTime) : ''),
      h('td', {}, inst.SystemName || ''),
      h('td', {}, inst.HostName || ''),
      h('td', { class: 'mono' }, inst.LocalIp || ''),
      h('td', {}, (inst.Tags || []).map(t => h('span', { class: 'tag' }, `${t.Key}=${t.Value}`))),
      h('td', { class: 'row-actions' }, h('a', { href: `#/run?instance=${encodeURIComponent(inst.InstanceId)}` }, 'Run…'), ' ', shellButton(inst, agent))));
    put(list,
      h('p', { class: 'muted' }, `${hits.length} of ${rows.length} instances`),
      table('Instances', ['Instance', 'Status', 'Agent', 'Heartbeat', 'OS', 'Host', 'IP', 'Tags', ''], trs));
  };
  const load = async () => {
    try {
      const [insts, agents] = await Promise.all([
        api.all('DescribeRegisterInstances', {}, 'RegisterInstanceSet'),
        api.all('DescribeAutomationAgentStatus', {}, 'AutomationAgentSet'),
      ]);
      const byId = new Map(agents.map(a => [a.InstanceId, a]));
      rows = insts.map(inst => ({ inst, agent: byId.get(inst.InstanceId) }));
      show();
      askShells();
    } catch (e) { put(list, errorBox(e)); }
  };
  search.addEventListener('input', show);
  status.addEventListener('change', show);
  await load();
  if (ctx.query.get('add')) addDialog();
  let timer;
  const push = new api.Push('*', () => { clearTimeout(timer); timer = setTimeout(load, 1500); });
  return () => { clearTimeout(timer); push.close(); };

  function addDialog() {
    const prefix = h('input', { value: 'node', required: true });
    const limit = h('input', { type: 'number', min: '1', max: '1000', value: '10' });
    const tags = h('input', { placeholder: 'env=lab, team=ops' });
    const out = h('div', { 'aria-live': 'polite' });
    const create = h('button', { type: 'button', class: 'primary' }, 'Create register code');
    create.addEventListener('click', async () => {
      create.disabled = true;
      try {
        const tagList = tags.value.split(',').map(s => s.trim()).filter(Boolean).map(s => {
          const i = s.indexOf('=');
          return i < 0 ? { Key: s, Value: '' } : { Key: s.slice(0, i).trim(), Value: s.slice(i + 1).trim() };
        });
        const r = await api.call('CreateRegisterCode', {
          Description: 'added from the console', InstanceNamePrefix: prefix.value.trim() || 'node',
          RegisterLimit: Number(limit.value) || 1, ...(tagList.length ? { Tags: tagList } : {}),
        });
        const cmd = `drover agent --server ${location.origin} --register-code ${r.RegisterCodeValue}`;
        const code = h('pre', { class: 'command', id: 'agent-command', tabindex: '0' }, cmd);
        const copy = h('button', { type: 'button', onclick: async () => { try { await navigator.clipboard.writeText(cmd); toast('Copied'); } catch { toast('Select the command and copy it'); } } }, 'Copy');
        put(out,
          h('p', {}, 'Run this on each machine (as root for tasks as any user). The code pins this server\'s certificate, so no CA file is needed:'),
          code, copy,
          h('p', { class: 'hint' }, `Register code ${r.RegisterCodeId}: up to ${limit.value} machines. The new instances appear here within seconds.`));
      } catch (e) { put(out, h('div', {}, e.message)); create.disabled = false; }
    });
    dialog('Add instances', h('div', {},
      field('Name prefix', prefix, 'Instances are named <prefix>-<n>.'),
      field('How many machines may use the code', limit),
      field('Tags for the new instances', tags, 'Comma-separated key=value pairs.'),
      create, out),
    [h('button', { type: 'button', onclick: ev => ev.target.closest('dialog').close() }, 'Close')]);
  }
}
