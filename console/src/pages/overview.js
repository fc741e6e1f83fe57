// Overview: how many instances are online, what ran recently and how it
// ended, and the failures that need attention. Refreshed by server push.

import * as api from '../api.js';
import { h, put, invocationLabel, badge, timeEl, table, empty, errorBox, section } from '../dom.js';

const BAD = new Set(['FAILED', 'PARTIAL_FAILED', 'TIMEOUT', 'CANCELLED', 'DELIVER_FAILED', 'START_FAILED']);

export async function render(main) {
  const body = h('div', { class: 'overview' });
  put(main, h('h1', {}, 'Overview'), body);
  let timer = null;
  const load = async () => {
    try {
      const [agents, invs] = await Promise.all([
        api.all('DescribeAutomationAgentStatus', {}, 'AutomationAgentSet'),
        api.call('DescribeInvocations', { Limit: 15 }),
      ]);
      const online = agents.filter(a => a.AgentStatus === 'Online').length;
      const list = invs.InvocationSet || [];
      const failed = list.filter(i => BAD.has(i.InvocationStatus));
      const stat = (n, label, cls, href) => h('a', { class: `stat ${cls}`, href }, h('strong', {}, String(n)), h('span', {}, label));
      const row = i => [
        h('a', { href: `#/invocations/${i.InvocationId}` }, invocationLabel(i)),
        badge(i.InvocationStatus),
        `${(i.InvocationTaskBasicInfoSet || []).length}`,
        i.InvocationSource || '',
        timeEl(i.CreatedTime),
      ];
      put(body,
        h('div', { class: 'stats' },
          stat(online, 'instances online', 'ok', '#/instances'),
          stat(agents.length - online, 'offline', agents.length - online ? 'off' : '', '#/instances'),
          stat(invs.TotalCount || 0, 'invocations', '', '#/history'),
          stat(failed.length, 'recent failures', failed.length ? 'bad' : '', '#/history')),
        agents.length === 0
          ? empty('No instances yet', 'Add your first machine: create a register code and paste the agent command on it.',
            h('a', { class: 'button primary', href: '#/instances?add=1' }, 'Add instances'))
          : null,
        section('Needs attention',
          failed.length
            ? table('Failed invocations', ['Command', 'Status', 'Instances', 'Source', 'Started'], failed.map(row))
            : h('p', { class: 'muted' }, 'Nothing failed recently.')),
        section('Recent invocations',
          list.length
            ? table('Recent invocations', ['Command', 'Status', 'Instances', 'Source', 'Started'], list.map(row))
            : empty('Nothing has run yet', null, h('a', { class: 'button primary', href: '#/run' }, 'Run a command'))));
    } catch (e) {
      put(body, errorBox(e));
    }
  };
  await load();
  const push = new api.Push('*', () => {
    clearTimeout(timer);
    timer = setTimeout(load, 1000);
  });
  return () => { clearTimeout(timer); push.close(); };
}
