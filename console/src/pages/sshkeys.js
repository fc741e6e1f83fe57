// SSH: the signed-in user's own public keys for the ssh gateway, and the
// gateway itself — where it listens, its host key fingerprint (compare it
// with what ssh shows on the first connection) and a known_hosts line —
// with the command that reaches an instance.

import * as api from '../api.js';
import { h, put, errorBox, section, toast } from '../dom.js';
import { keyManager } from '../term/sshkeys.js';

function copyButton(text, label) {
  return h('button', {
    type: 'button', class: 'small', 'aria-label': `Copy ${label}`,
    onclick: async () => { try { await navigator.clipboard.writeText(text); toast('Copied'); } catch { toast('Select the text and copy it', 'bad'); } },
  }, 'Copy');
}

export async function render(main, ctx) {
  const gateway = h('div', { id: 'ssh-gateway' });
  const keys = h('div', {});
  put(main, h('h1', {}, 'SSH'), section('The ssh gateway', gateway), section('Your ssh keys', keys));
  try {
    const info = await api.sshInfo();
    if (!info.Enabled) {
      put(gateway, h('p', {}, 'The ssh gateway is off. Start the server with ',
        h('code', {}, '--ssh-listen 0.0.0.0:2222'), ' to reach instances with a standard ssh client.'));
    } else {
      const host = location.hostname;
      const target = `${host.includes(':') ? `[${host}]` : host}`;
      const cmd = `ssh -p ${info.Port} ${ctx.me.UserName}+INSTANCE-ID@${target}`;
      const known = `[${host}]:${info.Port} ${info.HostKey}`;
      put(gateway,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Listening on'), h('dd', { class: 'mono' }, info.Address),
          h('dt', {}, 'Host key fingerprint'), h('dd', {}, h('span', { class: 'mono', id: 'ssh-fingerprint' }, info.Fingerprint), ' ', copyButton(info.Fingerprint, 'the fingerprint'))),
        h('p', {}, 'Reach an instance (add ', h('code', {}, '+LOGIN'), ' to log in as another account; ', h('code', {}, '-- COMMAND'), ' to run one command):'),
        h('pre', { class: 'command', tabindex: '0' }, cmd), copyButton(cmd, 'the ssh command'),
        h('p', {}, 'Or trust the host key before the first connection, with this line in ', h('code', {}, '~/.ssh/known_hosts'), ':'),
        h('pre', { class: 'command', tabindex: '0' }, known), copyButton(known, 'the known_hosts line'));
    }
  } catch (e) { put(gateway, errorBox(e)); }
  await keyManager(keys);
}
