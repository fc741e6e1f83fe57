// Sessions: every terminal session the server recorded (console and ssh),
// newest first, with who, where, as whom, from where, when, how long, how
// many bytes and its state; filters by instance, user and state; each row
// replays (#/sessions/<id>) or downloads its asciicast file, and an admin
// may terminate a live one. The list is DescribeSessions, decided by the
// gate like every call: a user sees only the sessions the policy allows.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, badge, timeEl, bytes, table, empty, errorBox, field, toast } from '../dom.js';
import { fields, castUrl, span } from '../term/sessinfo.js';

const PAGE = 50;

export async function render(main) {
  await can.load(['DescribeSessions', 'TerminateSession']);
  const instance = h('input', { placeholder: 'mi-…', spellcheck: 'false' });
  const user = h('input', { placeholder: 'user name', spellcheck: 'false' });
  const state = h('select', {}, h('option', { value: '' }, 'any state'), h('option', { value: 'LIVE' }, 'live'), h('option', { value: 'ENDED' }, 'ended'));
  const list = h('div', {});
  let offset = 0;
  const form = h('form', { class: 'filters', onsubmit: ev => { ev.preventDefault(); offset = 0; load(); } },
    field('Instance', instance), field('User', user), field('State', state), h('button', { type: 'submit' }, 'Filter'));
  put(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Sessions'), h('a', { class: 'button', href: '#/terminal' }, 'Open a terminal')),
    form, list);

  async function terminate(s, btn) {
    btn.disabled = true;
    try {
      await api.call('TerminateSession', { InstanceId: s.instance, SessionId: s.id });
      toast(`Terminating ${s.id}`);
      setTimeout(load, 500);
    } catch (e) { toast(`${e.code}: ${e.message}`, 'bad'); btn.disabled = false; }
  }

  async function load() {
    const filters = [];
    if (instance.value.trim()) filters.push({ Name: 'instance-id', Values: [instance.value.trim()] });
    if (user.value.trim()) filters.push({ Name: 'user', Values: [user.value.trim()] });
    if (state.value) filters.push({ Name: 'state', Values: [state.value] });
    try {
      const r = await api.call('DescribeSessions', { Limit: PAGE, Offset: offset, ...(filters.length ? { Filters: filters } : {}) });
      const set = (r.SessionSet || []).map(fields);
      const total = r.TotalCount || set.length;
      if (!set.length) {
        put(list, empty('No sessions', offset ? null : 'Sessions opened from the console or through ssh show up here, recorded.'));
        return;
      }
      const rows = set.map(s => h('tr', { dataset: { session: s.id, state: s.live ? 'live' : 'ended' } },
        h('td', {}, h('a', { href: `#/sessions/${encodeURIComponent(s.id)}`, class: 'mono' }, s.id),
          s.command ? h('div', { class: 'muted small mono' }, s.command) : null),
        h('td', {}, s.who),
        h('td', {}, h('span', { class: 'mono' }, s.instance)),
        h('td', {}, s.login),
        h('td', {}, s.via, s.client ? h('div', { class: 'muted small mono' }, s.client) : null),
        h('td', {}, timeEl(s.started)),
        h('td', {}, span(s.durationMs)),
        h('td', {}, bytes(s.bytesOut), s.bytesIn ? h('div', { class: 'muted small' }, `${bytes(s.bytesIn)} in`) : null,
          s.truncated ? h('div', { class: 'denied' }, `recording truncated${s.dropped ? ` (${bytes(s.dropped)} not kept)` : ''}`) : null),
        h('td', {}, badge(s.live ? 'RUNNING' : s.exitCode === 0 ? 'SUCCESS' : s.exitCode === null ? 'TERMINATED' : 'FAILED'),
          h('div', { class: 'muted small' }, s.live ? 'live' : s.exitText)),
        h('td', { class: 'row-actions' },
          h('a', { href: `#/sessions/${encodeURIComponent(s.id)}`, 'aria-label': `Replay ${s.id}` }, 'Replay'), ' ',
          h('a', { href: castUrl(s.id), download: `${s.id}.cast`, 'aria-label': `Download the recording of ${s.id}` }, 'Download'), ' ',
          s.live ? can.guard(h('button', {
            type: 'button', class: 'small danger', 'aria-label': `Terminate ${s.id}`,
            onclick: ev => terminate(s, ev.currentTarget),
          }, 'Terminate'), 'TerminateSession') : null)));
      put(list,
        table('Sessions', ['Session', 'Who', 'Instance', 'As', 'Via', 'Started', 'Duration', 'Output', 'State', ''], rows),
        h('div', { class: 'pager' },
          h('button', { type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '← Newer'),
          h('span', { class: 'muted' }, `${offset + 1}–${offset + set.length} of ${total}`),
          h('button', { type: 'button', disabled: offset + PAGE >= total, onclick: () => { offset += PAGE; load(); } }, 'Older →')));
    } catch (e) { put(list, errorBox(e)); }
  }
  await load();
  // Live sessions' durations and bytes move: refresh while the page is open.
  const timer = setInterval(() => { if (document.visibilityState === 'visible') load(); }, 10000);
  return () => clearInterval(timer);
}
