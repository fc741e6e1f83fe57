// The list of one user's ssh public keys (the gateway signs people in with
// them): algorithm, fingerprint, description, when added and last used;
// import a key from its one-line text, delete one. Without `targetUin` it
// is the signed-in user's own keys; with it, a sub-user's (the Access
// page). The keys are CAM-side drover actions, decided like access keys.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, table, errorBox, field, toast, timeEl } from '../dom.js';

const CAM = a => ({ Action: a, Service: 'cam' });

/** Fills `box` with the key list and the import form; returns a reload function. */
export async function keyManager(box, { targetUin, who = 'you' } = {}) {
  await can.load([CAM('ImportSshPublicKey'), CAM('DeleteSshPublicKey')]);
  const target = targetUin === undefined ? {} : { TargetUin: Number(targetUin) };
  const list = h('div', { class: 'ssh-keys' });
  const text = h('textarea', {
    class: 'mono', rows: '3', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'ssh-ed25519 AAAAC3Nz… ann@laptop',
  });
  const desc = h('input', { autocomplete: 'off', placeholder: 'the key\'s comment when empty' });
  const err = h('div', { 'aria-live': 'assertive' });
  const add = h('button', { type: 'submit', class: 'primary' }, 'Import key');
  const form = h('form', {
    class: 'ssh-import',
    onsubmit: async ev => {
      ev.preventDefault();
      put(err);
      add.disabled = true;
      try {
        const body = { ...target, PublicKey: text.value.trim() };
        if (desc.value.trim()) body.Description = desc.value.trim();
        const r = await api.cam('ImportSshPublicKey', body);
        text.value = '';
        desc.value = '';
        toast(`Imported ${r.SshPublicKey ? r.SshPublicKey.Fingerprint : 'the key'}`);
        await load();
      } catch (e) { put(err, errorBox(e)); }
      add.disabled = false;
    },
  },
  field('Public key', text, 'One line as in id_ed25519.pub (Ed25519, ECDSA or RSA of 2048 bits or more). Never the private key.'),
  field('Description', desc),
  err, can.guard(add, 'ImportSshPublicKey'));

  async function remove(k, btn) {
    btn.disabled = true;
    try {
      await api.cam('DeleteSshPublicKey', { ...target, KeyId: k.KeyId });
      toast(`Deleted ${k.Fingerprint}`);
      await load();
    } catch (e) { toast(`${e.code}: ${e.message}`, 'bad'); btn.disabled = false; }
  }

  async function load() {
    try {
      const r = await api.cam('DescribeSshPublicKeys', target);
      const keys = r.SshPublicKeys || [];
      put(list, keys.length
        ? table('SSH public keys', ['Key', 'Fingerprint', 'Description', 'Added', 'Last used', ''], keys.map(k => h('tr', { dataset: { key: k.KeyId } },
          h('td', {}, h('span', { class: 'mono' }, k.KeyId), h('div', { class: 'muted small' }, k.Algorithm)),
          h('td', { class: 'mono small' }, k.Fingerprint),
          h('td', {}, k.Description || ''),
          h('td', {}, timeEl(k.CreateTime)),
          h('td', {}, k.LastUsedTime && !String(k.LastUsedTime).startsWith('1970') ? timeEl(k.LastUsedTime) : 'never'),
          h('td', {}, can.guard(h('button', {
            type: 'button', class: 'small danger', 'aria-label': `Delete key ${k.Fingerprint}`,
            onclick: ev => remove(k, ev.currentTarget),
          }, 'Delete'), 'DeleteSshPublicKey')))))
        : h('p', { class: 'muted' }, `No ssh keys: ${who === 'you' ? 'you sign' : `${who} signs`} in to the gateway with a console password only.`));
    } catch (e) { put(list, errorBox(e)); }
  }

  put(box, list, form);
  await load();
  return load;
}
