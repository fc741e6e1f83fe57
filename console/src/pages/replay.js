// Replay of one recorded session: its asciicast file (fetched with the
// signed-in cookie from /console/sessions/<id>.cast, decided by the gate)
// played into a read-only xterm at the recording's own size, at 1x, 2x or
// 8x, with a seek slider (a seek redraws everything up to that moment in
// one batch) and a download link.

import * as api from '../api.js';
import { h, put, errorBox, timeEl, bytes } from '../dom.js';
import { openTerminal } from '../term/xterm.js';
import { parseCast, Player, clock } from '../term/cast.js';
import { fields, castUrl, span } from '../term/sessinfo.js';

async function fetchCast(id) {
  let r;
  try {
    r = await fetch(castUrl(id), { credentials: 'same-origin' });
  } catch {
    throw new api.ApiError('NetworkError', 'the server cannot be reached; check your connection');
  }
  const text = await r.text();
  if (!r.ok) {
    let err = { Code: 'InternalError', Message: `HTTP ${r.status}` };
    try { err = JSON.parse(text).Response.Error || err; } catch { /* not JSON: keep the status */ }
    throw new api.ApiError(err.Code, err.Message);
  }
  return text;
}

export async function render(main, ctx) {
  const id = ctx.params.id;
  const meta = h('div', { class: 'meta' });
  const box = h('div', { class: 'term-box replay', dataset: { session: id } });
  put(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Replay ', h('span', { class: 'mono' }, id)),
      h('a', { href: '#/sessions' }, '← All sessions')),
    meta);
  // Who, where and when (the list's own entry); the replay works without it.
  try {
    const r = await api.call('DescribeSessions', { Filters: [{ Name: 'session-id', Values: [id] }], Limit: 1 });
    const s = (r.SessionSet || []).map(fields).find(x => x.id === id);
    if (s) {
      put(meta, `${s.who} on `, h('span', { class: 'mono' }, s.instance), ` as ${s.login} · ${s.via}`,
        s.client ? ` from ${s.client}` : '', ' · ', timeEl(s.started), ` · ${span(s.durationMs)} · ${bytes(s.bytesOut)}`,
        s.live ? ' · live (recorded so far)' : s.exitText ? ` · ${s.exitText}` : '');
    }
  } catch { /* the recording below says whether it may be seen */ }

  let cast;
  try {
    cast = parseCast(await fetchCast(id));
  } catch (e) {
    main.append(errorBox(e));
    return undefined;
  }

  const playBtn = h('button', { type: 'button', class: 'primary', 'aria-pressed': 'false' }, 'Play');
  const speed = h('select', { 'aria-label': 'Speed' }, ['1', '2', '8'].map(x => h('option', { value: x }, `${x}×`)));
  const slider = h('input', {
    type: 'range', min: '0', max: String(cast.duration), step: 'any', value: '0',
    'aria-label': 'Position', class: 'seek',
  });
  const at = h('span', { class: 'mono muted', 'aria-live': 'off' }, `0:00 / ${clock(cast.duration)}`);
  const dl = h('a', { class: 'button', href: castUrl(id), download: `${id}.cast` }, 'Download .cast');
  main.append(h('div', { class: 'toolbar player' }, playBtn, speed, slider, at, dl), box);
  main.classList.add('term-view');

  const t = openTerminal(box, { readOnly: true, label: `Replay of ${id}` });
  const term = t.term;
  let dragging = false;
  const player = new Player(cast, {
    reset: () => term.reset(),
    write: s => term.write(s),
    resize: (c, r) => term.resize(c, r),
  }, {
    onprogress: pos => {
      if (!dragging) slider.value = String(pos);
      put(at, `${clock(pos)} / ${clock(cast.duration)}`);
      box.dataset.position = pos.toFixed(3);
    },
    onstate: playing => {
      put(playBtn, playing ? 'Pause' : 'Play');
      playBtn.setAttribute('aria-pressed', String(playing));
      box.dataset.playing = String(playing);
    },
  });
  playBtn.addEventListener('click', () => (player.playing ? player.pause() : player.play()));
  speed.addEventListener('change', () => player.setSpeed(speed.value));
  slider.addEventListener('input', () => { dragging = true; player.seek(Number(slider.value)); dragging = false; });
  const q = ctx.query.get('speed');
  if (q && ['1', '2', '8'].includes(q)) { speed.value = q; player.setSpeed(q); }
  player.play();
  return () => {
    player.dispose();
    t.dispose();
  };
}
