// Webhooks: deliveries of "invocation finished" notifications with each
// attempt's HTTP status or error, so a broken receiver is easy to spot.
// DescribeWebhookDeliveries answers per invocation, so this page asks for
// the newest invocations' deliveries (or one invocation's, from its link).

import * as api from '../api.js';
import { h, put, table, empty, errorBox, timeEl, badge } from '../dom.js';

const RECENT = 25;

export async function render(main, ctx) {
  const list = h('div', {});
  put(main, h('h1', {}, 'Webhook deliveries'),
    h('p', { class: 'muted' }, 'Set a Webhook on a run or a schedule (API parameter Webhook) to be told when it finishes. Deliveries of the newest invocations:'), list);
  try {
    const one = ctx.query.get('invocation');
    const ids = one ? [one] : ((await api.call('DescribeInvocations', { Limit: RECENT })).InvocationSet || []).map(i => i.InvocationId);
    const sets = await Promise.all(ids.map(id => api.call('DescribeWebhookDeliveries', { InvocationId: id }).then(r => r.WebhookDeliverySet || []).catch(() => [])));
    const set = sets.flat();
    put(list, set.length ? table('Webhook deliveries', ['Invocation', 'URL', 'Status', 'Attempts', 'Last attempt', 'Created'], set.map(d => {
      const last = (d.AttemptSet || []).slice(-1)[0];
      return [
        d.InvocationId ? h('a', { href: `#/invocations/${d.InvocationId}` }, d.InvocationId) : '',
        h('span', { class: 'mono small' }, d.Url), badge(d.Status), String(d.Attempts),
        last ? `${last.HttpStatus || ''} ${last.Error || ''}`.trim() : '', timeEl(d.CreatedTime),
      ];
    })) : empty('No webhook deliveries', `None of the ${ids.length} newest invocations had a webhook.`));
  } catch (e) { put(list, errorBox(e)); }
}
