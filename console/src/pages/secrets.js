// Secrets: names, descriptions and who made them. Values go in (create /
// replace) and never come back out, so none is ever on this page.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, table, empty, errorBox, timeEl, field, dialog, toast } from '../dom.js';

export async function render(main, ctx) {
  await can.load(['CreateSecret', 'DeleteSecret']);
  const list = h('div', {});
  const add = h('button', { type: 'button', class: 'primary', onclick: () => create() }, 'New secret');
  put(main, h('div', { class: 'page-head' }, h('h1', {}, 'Secrets'), can.guard(add, 'CreateSecret')),
    h('p', { class: 'muted' }, 'Use a secret in a command as {{tat-secret:NAME}}; its value is masked in every output and record.'), list);
  try {
    const set = await api.all('DescribeSecrets', {}, 'SecretSet');
    put(list, set.length ? table('Secrets', ['Name', 'Description', 'Created by', 'Updated', ''], set.map(s => [
      h('code', {}, s.SecretName), s.Description || '', s.CreatedBy || '', timeEl(s.UpdatedTime),
      can.guard(h('button', {
        type: 'button', class: 'small danger', onclick: async () => {
          try { await api.call('DeleteSecret', { SecretName: s.SecretName }); toast('Deleted'); render(main, ctx); } catch (e) { toast(e.message, 'bad'); }
        },
      }, 'Delete'), 'DeleteSecret'),
    ])) : empty('No secrets', 'Store a password or token once and use it by name in commands.'));
  } catch (e) { put(list, errorBox(e)); }

  function create() {
    const name = h('input', { required: true, autocomplete: 'off' });
    const value = h('input', { type: 'password', required: true, autocomplete: 'new-password' });
    const desc = h('input', {});
    const err = h('div', {});
    const dlg = dialog('New secret', h('div', {}, field('Name', name), field('Value', value, 'Write-only: it is never shown again.'), field('Description', desc), err),
      [h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
        h('button', {
          type: 'button', class: 'primary', onclick: async () => {
            try {
              await api.call('CreateSecret', { SecretName: name.value.trim(), SecretValue: value.value, Description: desc.value });
              value.value = '';
              dlg.close(); toast('Saved'); render(main, ctx);
            } catch (e) { put(err, errorBox(e)); }
          },
        }, 'Save')]);
  }
}
