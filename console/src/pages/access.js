// Access: users, groups, API keys, policies (a JSON editor that the
// server's policy engine validates, pointing at the bad part), Azure-style
// role assignments, and the simulator ("can X do Y on Z, and which
// statement decided"). Everything goes through the CAM actions.

import * as api from '../api.js';
import * as can from '../can.js';
import { h, put, table, empty, errorBox, timeEl, field, dialog, toast } from '../dom.js';
import { keyManager } from '../term/sshkeys.js';

const CAM_ACTIONS = ['AddUser', 'DeleteUser', 'CreateGroup', 'CreatePolicy', 'UpdatePolicy', 'DeletePolicy', 'AttachUserPolicy', 'CreateAccessKey']
  .map(a => ({ Action: a, Service: 'cam' }));

export async function render(main, ctx) {
  await can.load([...CAM_ACTIONS, 'CreateRoleAssignment', 'DeleteRoleAssignment']);
  const panels = {
    users: h('div', { role: 'tabpanel', id: 'acc-users' }),
    groups: h('div', { role: 'tabpanel', id: 'acc-groups', hidden: true }),
    policies: h('div', { role: 'tabpanel', id: 'acc-policies', hidden: true }),
    roles: h('div', { role: 'tabpanel', id: 'acc-roles', hidden: true }),
    simulator: h('div', { role: 'tabpanel', id: 'acc-simulator', hidden: true }),
  };
  const loaders = { users, groups, policies, roles, simulator };
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Access' }, Object.keys(panels).map(k => h('button', {
    type: 'button', role: 'tab', 'aria-controls': panels[k].id, 'aria-selected': String(k === 'users'), dataset: { tab: k },
    onclick: ev => select(k, ev.currentTarget),
  }, k[0].toUpperCase() + k.slice(1))));
  put(main, h('h1', {}, 'Access'), tabs, Object.values(panels));
  const select = (k, btn) => {
    for (const b of tabs.children) b.setAttribute('aria-selected', String(b === btn));
    for (const [n, p] of Object.entries(panels)) p.hidden = n !== k;
    loaders[k]();
  };
  const start = ctx.query.get('tab');
  if (start && panels[start]) select(start, tabs.querySelector(`[data-tab="${start}"]`)); else await users();

  async function users() {
    const p = panels.users;
    try {
      const r = await api.cam('ListUsers', {});
      const list = r.Data || [];
      const add = can.guard(h('button', { type: 'button', class: 'primary', onclick: addUser }, 'Add user'), 'AddUser');
      put(p, h('div', { class: 'toolbar' }, add),
        list.length ? table('Users', ['Name', 'Uin', 'Console', 'Remark', 'Keys', 'Policies'], list.map(u => [
          h('strong', {}, u.Name), h('span', { class: 'mono' }, String(u.Uin)), u.ConsoleLogin ? 'yes' : 'no', u.Remark || '',
          [h('button', { type: 'button', class: 'small', onclick: () => keys(u) }, 'Keys'), ' ',
            h('button', { type: 'button', class: 'small', 'aria-label': `SSH keys of ${u.Name}`, onclick: () => sshKeys(u) }, 'SSH keys')],
          h('button', { type: 'button', class: 'small', onclick: () => userPolicies(u) }, 'Policies'),
        ])) : empty('No sub-users', 'Add a user to give someone their own sign-in and permissions.'));
    } catch (e) { put(p, errorBox(e)); }
  }

  function addUser() {
    const name = h('input', { required: true, autocomplete: 'off' });
    const pass = h('input', { type: 'password', autocomplete: 'new-password' });
    const remark = h('input', {});
    const err = h('div', {});
    const dlg = dialog('Add user', h('div', {}, field('Name', name), field('Console password', pass, 'Leave empty for an API-only user.'), field('Remark', remark), err),
      [h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'),
        h('button', {
          type: 'button', class: 'primary', onclick: async () => {
            try {
              await api.cam('AddUser', { Name: name.value.trim(), Remark: remark.value, ...(pass.value ? { Password: pass.value, ConsoleLogin: 1 } : { ConsoleLogin: 0 }) });
              dlg.close(); toast('User added'); users();
            } catch (e) { put(err, errorBox(e)); }
          },
        }, 'Add')]);
  }

  async function keys(u) {
    const body = h('div', {}, 'Loading…');
    const dlg = dialog(`API keys of ${u.Name}`, body, [h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')]);
    const load = async () => {
      try {
        const r = await api.cam('ListAccessKeys', { TargetUin: Number(u.Uin) });
        const ks = r.AccessKeys || [];
        put(body,
          ks.length ? table('Keys', ['SecretId', 'Status', 'Created'], ks.map(k => [h('span', { class: 'mono' }, k.AccessKeyId), k.Status, timeEl(k.CreateTime)])) : h('p', { class: 'muted' }, 'No keys.'),
          can.guard(h('button', {
            type: 'button', onclick: async () => {
              try {
                const k = await api.cam('CreateAccessKey', { TargetUin: Number(u.Uin) });
                const ak = k.AccessKey || {};
                put(body, h('p', {}, 'Copy the secret key now; it is not shown again.'),
                  h('pre', { class: 'command' }, `SecretId:  ${ak.AccessKeyId}\nSecretKey: ${ak.SecretAccessKey}`));
              } catch (e) { toast(e.message, 'bad'); }
            },
          }, 'Create key'), 'CreateAccessKey'));
      } catch (e) { put(body, errorBox(e)); }
    };
    load();
    return dlg;
  }

  function sshKeys(u) {
    const body = h('div', {}, 'Loading…');
    const dlg = dialog(`SSH keys of ${u.Name}`, body, [h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')]);
    keyManager(body, { targetUin: u.Uin, who: u.Name }).catch(e => put(body, errorBox(e)));
    return dlg;
  }

  async function userPolicies(u) {
    const body = h('div', {}, 'Loading…');
    const dlg = dialog(`Policies of ${u.Name}`, body, [h('button', { type: 'button', onclick: () => dlg.close() }, 'Close')]);
    try {
      const [att, all] = await Promise.all([
        api.cam('ListAttachedUserAllPolicies', { TargetUin: Number(u.Uin), Rp: 200, Page: 1, AttachType: 0 }).catch(() => api.cam('ListAttachedUserPolicies', { TargetUin: Number(u.Uin), Rp: 200, Page: 1 })),
        api.cam('ListPolicies', { Rp: 200, Page: 1 }),
      ]);
      const attached = att.PolicyList || att.List || [];
      const pick = h('select', { 'aria-label': 'Policy to attach' }, (all.List || []).map(p => h('option', { value: String(p.PolicyId) }, p.PolicyName)));
      put(body,
        attached.length ? h('ul', {}, attached.map(p => h('li', {}, p.PolicyName || String(p.PolicyId)))) : h('p', { class: 'muted' }, 'No policies attached: this user may do nothing.'),
        h('div', { class: 'toolbar' }, pick, can.guard(h('button', {
          type: 'button', onclick: async () => {
            try { await api.cam('AttachUserPolicy', { AttachUin: Number(u.Uin), PolicyId: Number(pick.value) }); toast('Attached'); dlg.close(); } catch (e) { toast(e.message, 'bad'); }
          },
        }, 'Attach'), 'AttachUserPolicy')));
    } catch (e) { put(body, errorBox(e)); }
  }

  async function groups() {
    const p = panels.groups;
    try {
      const r = await api.cam('ListGroups', {});
      const list = r.GroupInfo || [];
      put(p, list.length ? table('Groups', ['Name', 'Id', 'Remark', 'Created'], list.map(g => [h('strong', {}, g.GroupName), String(g.GroupId), g.Remark || '', timeEl(g.CreateTime)]))
        : empty('No groups', 'Groups let several users share policies.'));
    } catch (e) { put(p, errorBox(e)); }
  }

  async function policies() {
    const p = panels.policies;
    try {
      const r = await api.cam('ListPolicies', { Rp: 200, Page: 1 });
      const list = r.List || [];
      const editor = h('textarea', { rows: '16', class: 'mono', spellcheck: 'false', 'aria-label': 'Policy document (JSON)' });
      const name = h('input', { placeholder: 'policy name' });
      const verdict = h('div', { 'aria-live': 'polite' });
      let current = null;
      editor.value = JSON.stringify({ version: '2.0', statement: [{ effect: 'allow', action: ['tat:Describe*'], resource: ['*'] }] }, null, 2);
      const check = async () => {
        try {
          const v = await api.validatePolicy(editor.value);
          put(verdict, v.Valid ? h('p', { class: 'ok-text' }, '✓ The policy engine accepts this document.')
            : h('div', { class: 'error', role: 'alert' }, v.Problem, v.Line ? ` (line ${v.Line}, column ${v.Column})` : ''));
          if (!v.Valid && v.Offset >= 0) { editor.focus(); editor.setSelectionRange(v.Offset, Math.min(editor.value.length, v.Offset + 1)); }
          return v.Valid;
        } catch (e) { put(verdict, errorBox(e)); return false; }
      };
      const save = async () => {
        if (!(await check())) return;
        try {
          if (current) await api.cam('UpdatePolicy', { PolicyId: current.PolicyId, PolicyDocument: editor.value });
          else await api.cam('CreatePolicy', { PolicyName: name.value.trim(), PolicyDocument: editor.value });
          toast('Policy saved'); policies();
        } catch (e) { put(verdict, errorBox(e)); }
      };
      const open = async pol => {
        try {
          const g = await api.cam('GetPolicy', { PolicyId: pol.PolicyId });
          current = pol;
          name.value = pol.PolicyName; name.disabled = true;
          try { editor.value = JSON.stringify(JSON.parse(g.PolicyDocument), null, 2); } catch { editor.value = g.PolicyDocument; }
          put(verdict);
        } catch (e) { put(verdict, errorBox(e)); }
      };
      put(p, h('div', { class: 'two-col' },
        h('div', {}, list.length ? table('Policies', ['Name', 'Type', 'Description', ''], list.map(pol => [
          h('strong', {}, pol.PolicyName), pol.Type === 2 ? 'preset' : 'custom', pol.Description || '',
          h('button', { type: 'button', class: 'small', onclick: () => open(pol) }, 'Open')])) : empty('No policies')),
        h('div', { class: 'card' }, h('h2', {}, 'Policy editor'), field('Name', name), editor,
          h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: () => { current = null; name.disabled = false; name.value = ''; } }, 'New'),
            h('button', { type: 'button', onclick: check }, 'Validate'),
            can.guard(h('button', { type: 'button', class: 'primary', onclick: save }, 'Save'), 'CreatePolicy')),
          verdict)));
    } catch (e) { put(p, errorBox(e)); }
  }

  async function roles() {
    const p = panels.roles;
    try {
      const r = await api.call('ListRoleAssignments', {});
      const list = r.RoleAssignmentSet || r.RoleAssignments || [];
      const ptype = h('select', {}, h('option', { value: 'User' }, 'User'), h('option', { value: 'Group' }, 'Group'));
      const pid = h('input', { placeholder: 'uin or group id' });
      const role = h('input', { placeholder: 'e.g. Reader, Contributor' });
      const scope = h('input', { placeholder: '/ or /instances/mi-…' });
      put(p,
        list.length ? table('Role assignments', ['Principal', 'Role', 'Scope', ''], list.map(a => [
          `${a.PrincipalType} ${a.PrincipalId}`, a.RoleName, h('code', {}, a.Scope),
          can.guard(h('button', { type: 'button', class: 'small danger', onclick: async () => { try { await api.call('DeleteRoleAssignment', { RoleAssignmentId: a.RoleAssignmentId }); roles(); } catch (e) { toast(e.message, 'bad'); } } }, 'Remove'), 'DeleteRoleAssignment'),
        ])) : empty('No role assignments'),
        h('form', {
          class: 'filters', onsubmit: async ev => {
            ev.preventDefault();
            try { await api.call('CreateRoleAssignment', { PrincipalType: ptype.value, PrincipalId: pid.value.trim(), RoleName: role.value.trim(), Scope: scope.value.trim() || '/' }); toast('Assigned'); roles(); } catch (e) { toast(e.message, 'bad'); }
          },
        }, field('Type', ptype), field('Principal', pid), field('Role', role), field('Scope', scope),
        can.guard(h('button', { type: 'submit' }, 'Assign role'), 'CreateRoleAssignment')));
    } catch (e) { put(p, errorBox(e)); }
  }

  async function simulator() {
    const p = panels.simulator;
    const who = h('input', { placeholder: 'uin, or root' });
    const action = h('input', { placeholder: 'RunCommand or tat:RunCommand' });
    const res = h('input', { placeholder: 'optional: mi-… or a qcs name' });
    const out = h('div', { 'aria-live': 'polite' });
    put(p, h('form', {
      class: 'filters', onsubmit: async ev => {
        ev.preventDefault();
        try {
          const r = await api.call('SimulatePrincipalPolicy', {
            PrincipalId: who.value.trim(), Action: action.value.trim(), ...(res.value.trim() ? { Resources: [res.value.trim()] } : {}),
          });
          put(out, h('div', { class: `verdict ${r.Allowed ? 'ok' : 'bad'}` },
            h('strong', {}, r.Allowed ? 'Allowed' : 'Denied'), h('p', {}, r.Explanation),
            (r.DecidingStatements || []).length ? h('ul', {}, r.DecidingStatements.map(s => h('li', {}, `${s.PolicyName} (id ${s.PolicyId}), statement ${s.StatementIndex}`))) : null));
        } catch (e) { put(out, errorBox(e)); }
      },
    }, field('Who', who), field('Action', action), field('Resource', res), h('button', { type: 'submit' }, 'Simulate')), out);
  }
}
