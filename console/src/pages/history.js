// History: past invocations filtered by status, command, instance, time
// and user, paged; any row opens the invocation's live view.

import * as api from '../api.js';
import { h, put, invocationLabel, badge, timeEl, table, empty, errorBox, field } from '../dom.js';

const PAGE = 50;
const SCAN = 1000;

export async function render(main) {
  const status = h('select', {}, ['', 'PENDING', 'RUNNING', 'SUCCESS', 'FAILED', 'PARTIAL_FAILED', 'TIMEOUT', 'CANCELLED'].map(s => h('option', { value: s }, s ? s.toLowerCase().replaceAll('_', ' ') : 'any status')));
  const command = h('input', { placeholder: 'cmd-… or a name' });
  const instance = h('input', { placeholder: 'mi-…' });
  const user = h('input', { placeholder: 'user name' });
  const since = h('input', { type: 'datetime-local' });
  const list = h('div', {});
  let offset = 0;
  const form = h('form', { class: 'filters', onsubmit: ev => { ev.preventDefault(); offset = 0; load(); } },
    field('Status', status), field('Command', command), field('Instance', instance), field('User', user), field('Since', since),
    h('button', { type: 'submit' }, 'Filter'));
  put(main, h('h1', {}, 'History'), form, list);

  // DescribeInvocations filters by command id on the server; status, name,
  // user, instance and time are applied here to the newest SCAN invocations.
  async function load() {
    const c = command.value.trim();
    const inst = instance.value.trim();
    const who = user.value.trim().toLowerCase();
    const t0 = since.value ? new Date(since.value).getTime() : 0;
    const local = status.value || (c && !c.startsWith('cmd-')) || inst || who || t0;
    const server = c.startsWith('cmd-') ? { Filters: [{ Name: 'command-id', Values: [c] }] } : {};
    try {
      let set;
      let total;
      if (local) {
        let ids = null;
        if (inst) {
          const tasks = await api.all('DescribeInvocationTasks', { Filters: [{ Name: 'instance-id', Values: [inst] }] }, 'InvocationTaskSet', { max: SCAN });
          ids = new Set(tasks.map(t => t.InvocationId));
        }
        const all = await api.all('DescribeInvocations', server, 'InvocationSet', { max: SCAN });
        const hits = all.filter(i => (!status.value || i.InvocationStatus === status.value)
          && (!c || c.startsWith('cmd-') || String(i.CommandName || '').toLowerCase().includes(c.toLowerCase()))
          && (!ids || ids.has(i.InvocationId))
          && (!who || [i.CreatedBy, i.Username].some(v => String(v || '').toLowerCase().includes(who)))
          && (!t0 || new Date(i.CreatedTime).getTime() >= t0));
        total = hits.length;
        set = hits.slice(offset, offset + PAGE);
      } else {
        const r = await api.call('DescribeInvocations', { ...server, Limit: PAGE, Offset: offset });
        set = r.InvocationSet || [];
        total = r.TotalCount || 0;
      }
      if (!set.length) { put(list, empty('No invocations match', offset ? null : 'Run a command and it shows up here.', h('a', { class: 'button', href: '#/run' }, 'Run a command'))); return; }
      const rows = set.map(i => [
        h('a', { href: `#/invocations/${i.InvocationId}` }, invocationLabel(i)),
        h('span', { class: 'mono' }, i.InvocationId),
        badge(i.InvocationStatus),
        String((i.InvocationTaskBasicInfoSet || []).length),
        i.Username || '',
        i.InvocationSource || '',
        timeEl(i.CreatedTime),
      ]);
      put(list,
        table('Invocations', ['Command', 'Invocation', 'Status', 'Instances', 'Run as', 'Source', 'Started'], rows),
        h('div', { class: 'pager' },
          h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '← Newer'),
          h('span', { class: 'muted' }, `${offset + 1}–${offset + set.length} of ${total}`),
          h('button', { type: 'button', disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }, 'Older →')));
    } catch (e) { put(list, errorBox(e)); }
  }
  await load();
}
