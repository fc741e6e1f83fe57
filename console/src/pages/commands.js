// Commands: the account's saved commands and the public library side by
// side, grouped by scene, with their parameters; create, edit, delete, run.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, table, empty, errorBox, field, dialog, toast, textToBase64, base64ToText, timeEl } from '../dom.js';

function confsOf(c) {
  const v = c.DefaultParameterConfs;
  if (Array.isArray(v)) return v;
  try { const j = JSON.parse(v || '[]'); return Array.isArray(j) ? j : []; } catch { return []; }
}

export async function render(main, ctx) {
  await can.load(['CreateCommand', 'ModifyCommand', 'DeleteCommand', 'InvokeCommand']);
  const [cmds, scenes] = await Promise.all([
    api.all('DescribeCommands', {}, 'CommandSet'),
    api.all('DescribeScenes', {}, 'SceneSet').catch(() => []),
  ]);
  const sceneName = new Map(scenes.map(s => [s.SceneId, s.SceneName]));
  const search = h('input', { type: 'search', placeholder: 'search commands', 'aria-label': 'Search commands' });
  const mine = h('div', {});
  const lib = h('div', {});
  const newBtn = h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'New command');
  put(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Commands'), can.guard(newBtn, 'CreateCommand')),
    h('div', { class: 'toolbar' }, search),
    h('div', { class: 'two-col' },
      h('section', { class: 'card' }, h('h2', {}, 'Your commands'), mine),
      h('section', { class: 'card' }, h('h2', {}, 'Public library'), lib)));

  const card = (c, own) => h('article', { class: 'cmd' },
    h('h3', {}, c.CommandName),
    h('p', { class: 'muted' }, c.Description || ''),
    confsOf(c).length ? h('ul', { class: 'params-list' }, confsOf(c).map(p => h('li', {}, h('code', {}, p.ParameterName), p.ParameterValue ? ` = ${p.ParameterValue}` : '', p.ParameterDescription ? ` — ${p.ParameterDescription}` : ''))) : null,
    h('p', { class: 'small muted' }, `${c.CommandType} · ${c.CommandId}`, own ? [' · updated ', timeEl(c.UpdatedTime)] : ''),
    h('div', { class: 'actions' },
      can.guard(h('a', { class: 'button small', href: `#/run?command=${encodeURIComponent(c.CommandId)}` }, 'Run…'), 'InvokeCommand'),
      own ? can.guard(h('button', { type: 'button', class: 'small', onclick: () => edit(c) }, 'Edit'), 'ModifyCommand') : null,
      own ? can.guard(h('button', { type: 'button', class: 'small danger', onclick: () => remove(c) }, 'Delete'), 'DeleteCommand') : null));

  const show = () => {
    const q = search.value.toLowerCase();
    const match = c => !q || [c.CommandName, c.Description, c.CommandId].some(v => String(v || '').toLowerCase().includes(q));
    const own = cmds.filter(c => c.CreatedBy !== 'TAT' && match(c));
    put(mine, own.length ? own.map(c => card(c, true)) : empty('No saved commands', 'Save one from the Run page or click "New command".'));
    const pub = cmds.filter(c => c.CreatedBy === 'TAT' && match(c));
    const byScene = new Map();
    for (const c of pub) {
      const keys = (c.Scenes && c.Scenes.length ? c.Scenes : ['other']);
      for (const s of keys) { if (!byScene.has(s)) byScene.set(s, []); byScene.get(s).push(c); }
    }
    put(lib, pub.length ? [...byScene.entries()].map(([s, list], n) => h('details', { open: n === 0 || !!q }, h('summary', {}, `${sceneName.get(s) || s} (${list.length})`), list.map(c => card(c, false))))
      : empty('No public commands match'));
  };
  search.addEventListener('input', show);
  show();

  function edit(c) {
    const name = h('input', { value: c ? c.CommandName : '', required: true });
    const desc = h('input', { value: c ? c.Description : '' });
    const type = h('select', {}, ['SHELL', 'PYTHON', 'POWERSHELL'].map(t => h('option', { value: t }, t)));
    type.value = c ? c.CommandType : 'SHELL';
    const content = h('textarea', { rows: '10', class: 'mono', spellcheck: 'false' });
    content.value = c ? base64ToText(c.Content || '') : '';
    const timeout = h('input', { type: 'number', value: c ? c.Timeout : 60 });
    const workdir = h('input', { value: c ? c.WorkingDirectory : '' });
    const params = h('textarea', { rows: '3', class: 'mono', placeholder: '{"name": "default"}' });
    params.value = c && c.EnableParameter ? (c.DefaultParameters || '') : '';
    const err = h('div', {});
    const dlg = dialog(c ? `Edit ${c.CommandName}` : 'New command', h('div', {},
      field('Name', name), field('Description', desc), field('Type', type), field('Content', content),
      field('Default parameters (JSON)', params, 'Enables {{name}} parameters in the content. Leave empty for none.'),
      h('div', { class: 'row' }, field('Timeout (s)', timeout), field('Working directory', workdir)), err),
    [h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
      h('button', {
        type: 'button', class: 'primary', onclick: async () => {
          const body = {
            CommandName: name.value.trim(), Description: desc.value, CommandType: type.value,
            Content: textToBase64(content.value), Timeout: Number(timeout.value) || 60,
            WorkingDirectory: workdir.value,
            EnableParameter: !!params.value.trim(), ...(params.value.trim() ? { DefaultParameters: params.value.trim() } : {}),
          };
          try {
            if (c) await api.call('ModifyCommand', { CommandId: c.CommandId, ...body });
            else await api.call('CreateCommand', body);
            dlg.close();
            toast('Saved');
            render(main, ctx);
          } catch (e) { put(err, errorBox(e)); }
        },
      }, 'Save')]);
  }

  function remove(c) {
    const dlg = dialog('Delete command', h('p', {}, `Delete "${c.CommandName}"? Its past invocations stay in the history.`),
      [h('button', { type: 'button', onclick: () => dlg.close() }, 'Keep'),
        h('button', {
          type: 'button', class: 'danger', onclick: async () => {
            try { await api.call('DeleteCommand', { CommandId: c.CommandId }); dlg.close(); toast('Deleted'); render(main, ctx); } catch (e) { toast(e.message, 'bad'); }
          },
        }, 'Delete')]);
  }
}
