// Schedules: invokers (run a command on a schedule) with enable/disable
// and their records (each firing and the invocation it started).

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, table, empty, errorBox, timeEl, badge, toast } from '../dom.js';

export async function render(main) {
  await can.load(['EnableInvoker', 'DisableInvoker', 'DeleteInvoker']);
  const list = h('div', {});
  const records = h('div', {});
  put(main, h('h1', {}, 'Schedules'), list, h('section', { class: 'card' }, h('h2', {}, 'Recent runs'), records));
  const load = async () => {
    try {
      const [ivks, recs] = await Promise.all([
        api.all('DescribeInvokers', {}, 'InvokerSet'),
        api.call('DescribeInvokerRecords', { Limit: 50 }),
      ]);
      put(list, ivks.length ? table('Schedules', ['Name', 'Command', 'Schedule', 'Instances', 'Enabled', ''], ivks.map(i => [
        h('strong', {}, i.Name), h('span', { class: 'mono' }, i.CommandId),
        (i.ScheduleSettings && (i.ScheduleSettings.Recurrence || i.ScheduleSettings.InvokeTime)) || i.Type,
        String((i.InstanceIds || []).length),
        i.Enable ? 'yes' : 'no',
        can.guard(h('button', {
          type: 'button', class: 'small', onclick: async () => {
            try { await api.call(i.Enable ? 'DisableInvoker' : 'EnableInvoker', { InvokerId: i.InvokerId }); toast('Updated'); load(); } catch (e) { toast(e.message, 'bad'); }
          },
        }, i.Enable ? 'Disable' : 'Enable'), i.Enable ? 'DisableInvoker' : 'EnableInvoker'),
      ])) : empty('No schedules', 'Create one with the CreateInvoker API or `drover` CLI; it shows up here with its runs.'));
      const rs = recs.InvokerRecordSet || [];
      put(records, rs.length ? table('Schedule runs', ['Schedule', 'Time', 'Reason', 'Invocation', 'Result'], rs.map(r => [
        h('span', { class: 'mono' }, r.InvokerId), timeEl(r.InvokeTime), r.Reason || '',
        r.InvocationId ? h('a', { href: `#/invocations/${r.InvocationId}` }, r.InvocationId) : '', r.Result || '',
      ])) : h('p', { class: 'muted' }, 'No runs yet.'));
    } catch (e) { put(list, errorBox(e)); }
  };
  await load();
}
