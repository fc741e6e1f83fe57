// Webhooks: deliveries of "invocation finished" notifications, with each
// attempt's HTTP status or error, so a broken receiver is easy to spot.

import * as api from '../api.js';
import { h, put, table, empty, errorBox, timeEl, badge } from '../dom.js';

export async function render(main) {
  const list = h('div', {});
  put(main, h('h1', {}, 'Webhook deliveries'),
    h('p', { class: 'muted' }, 'Set a Webhook on a run or a schedule (API parameter Webhook) to be told when it finishes.'), list);
  try {
    const r = await api.call('DescribeWebhookDeliveries', { Limit: 100 });
    const set = r.WebhookDeliverySet || [];
    put(list, set.length ? table('Webhook deliveries', ['Invocation', 'URL', 'Status', 'Attempts', 'Last attempt', 'Created'], set.map(d => {
      const last = (d.AttemptSet || []).slice(-1)[0];
      return [
        d.InvocationId ? h('a', { href: `#/invocations/${d.InvocationId}` }, d.InvocationId) : '',
        h('span', { class: 'mono small' }, d.Url), badge(d.Status), String(d.Attempts),
        last ? `${last.HttpStatus || ''} ${last.Error || ''}`.trim() : '', timeEl(d.CreatedTime),
      ];
    })) : empty('No deliveries yet'));
  } catch (e) { put(list, errorBox(e)); }
}
