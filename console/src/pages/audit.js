// Audit log: every API and console call with who, what, the decision and
// the statement that decided; filter, search and export (JSON lines of
// what the filter matches, read page by page).

import * as api from '../api.js';
import { h, put, table, empty, errorBox, timeEl, badge, field } from '../dom.js';

const PAGE = 50;

export async function render(main) {
  const action = h('input', { placeholder: 'e.g. RunCommand' });
  const who = h('input', { placeholder: 'uin or root' });
  const decision = h('select', {}, h('option', { value: '' }, 'any'), h('option', { value: 'allow' }, 'allow'), h('option', { value: 'deny' }, 'deny'));
  const text = h('input', { type: 'search', placeholder: 'search shown rows' });
  const list = h('div', {});
  let offset = 0;
  let rows = [];
  const params = () => {
    const f = [];
    if (action.value.trim()) f.push({ Name: 'action', Values: [action.value.trim()] });
    if (who.value.trim()) f.push({ Name: 'principal', Values: [who.value.trim()] });
    if (decision.value) f.push({ Name: 'decision', Values: [decision.value] });
    return f.length ? { Filters: f } : {};
  };
  const exportBtn = h('button', {
    type: 'button', onclick: async () => {
      const all = await api.all('DescribeAuditEvents', params(), 'AuditEventSet', { max: 100000 });
      const blob = new Blob(all.map(e => `${JSON.stringify(e)}\n`), { type: 'application/x-ndjson' });
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: 'drover-audit.jsonl' });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    },
  }, 'Export (JSON lines)');
  const form = h('form', { class: 'filters', onsubmit: ev => { ev.preventDefault(); offset = 0; load(); } },
    field('Action', action), field('Principal', who), field('Decision', decision), h('button', { type: 'submit' }, 'Filter'), exportBtn);
  put(main, h('h1', {}, 'Audit log'), form, field('Search', text), list);
  const show = total => {
    const q = text.value.toLowerCase();
    const hits = rows.filter(e => !q || JSON.stringify(e).toLowerCase().includes(q));
    if (!hits.length) { put(list, empty('No events match')); return; }
    put(list,
      table('Audit events', ['Time', 'Principal', 'Action', 'Resources', 'Decision', 'Outcome', 'Source IP'], hits.map(e => [
        timeEl(e.Time), e.Principal, e.Action, h('span', { class: 'mono small' }, (e.Resources || []).join(', ')),
        h('span', { title: e.DecidingStatement || '' }, badge(e.Decision || '—')), e.Outcome, e.SourceIp || '',
      ])),
      h('div', { class: 'pager' },
        h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '← Newer'),
        h('span', { class: 'muted' }, `${offset + 1}–${offset + rows.length} of ${total}`),
        h('button', { type: 'button', disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }, 'Older →')));
  };
  let total = 0;
  text.addEventListener('input', () => show(total));
  async function load() {
    try {
      const r = await api.call('DescribeAuditEvents', { ...params(), Limit: PAGE, Offset: offset });
      rows = r.AuditEventSet || [];
      total = r.TotalCount || 0;
      show(total);
    } catch (e) { put(list, errorBox(e)); }
  }
  await load();
}
