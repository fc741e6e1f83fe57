// End-to-end tests of the web console in a real browser (Debian's
// chromium driven by playwright-core) against a real drover server with
// real agent processes, all started here on 127.0.0.1:0 in a fresh data
// directory. Screenshots of the main pages go to target/console-screenshots/
// and every main page gets an axe-core accessibility check.
//
// Run: node --test console/tests/   (after `cargo build`; DROVER_BIN and
// CHROMIUM override the binaries' paths).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request as httpsRequest } from 'node:https';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const BIN = process.env.DROVER_BIN || join(repo, 'target', 'debug', 'drover');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(repo, 'target', 'console-screenshots');
const AXE = readFileSync(join(here, '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const ROOT_PASSWORD = 'root-console-pass-1';
const ANN_PASSWORD = 'Ann-console-pass-1';
// Generous: the machine is shared with other builds.
const WAIT = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'drover-console-e2e-'));
const children = [];
let browser;
let base;
let page;
const profiles = [];

/** A browser with its own fresh profile (--user-data-dir), closed in after(). */
async function freshBrowser(name) {
  const ctx = await chromium.launchPersistentContext(join(dir, `chromium-${name}`), {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  profiles.push(ctx);
  return ctx;
}

function startProcess(args, name) {
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DROVER_LOG: 'warn' } });
  let log = '';
  child.stdout.on('data', d => { log += d; });
  child.stderr.on('data', d => { log += d; });
  child.log = () => log;
  child.label = name;
  children.push(child);
  return child;
}

async function until(what, fn, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

async function shot(p, name) {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** axe-core on the page as it is; fails on serious or critical violations. */
async function axeCheck(p, name) {
  // Evaluated through the DevTools protocol, so the page's CSP still holds.
  await p.evaluate(AXE);
  const r = await p.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }));
  });
  const bad = r.filter(v => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: accessibility violations ${JSON.stringify(bad, null, 1)}`);
}

/** Calls an action as the page's signed-in user, like the console does. */
async function consoleCall(p, action, params, cam = false) {
  return p.evaluate(async ([action, params, cam]) => {
    const r = await fetch('/console/api', {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json', 'X-TC-Action': action,
        'X-TC-Version': cam ? '2019-01-16' : '2020-10-28',
        'X-CSRF-Token': sessionStorage.getItem('drover.csrf') || '',
      },
      body: JSON.stringify(params),
    });
    return (await r.json()).Response;
  }, [action, params, cam]);
}

async function signIn(p, user, password) {
  await p.goto(`${base}/`);
  await p.fill('#login-user', user);
  await p.fill('#login-pass', password);
  await p.click('button[type=submit]');
  await p.waitForSelector('#who', { timeout: WAIT });
}

/** Navigates the console to `hash` and waits until that page has rendered. */
async function go(p, hash) {
  await p.evaluate(h => {
    document.body.dataset.page = '';
    if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = h;
  }, hash);
  await p.waitForFunction(h => document.body.dataset.page === h, hash, { timeout: WAIT });
}

/** Runs `script` on the instances from the Run page and returns the invocation id. */
async function runFromPage(p, script, instanceIds) {
  await go(p, '#/run');
  for (const id of instanceIds) await p.check(`.pick-list input[value="${id}"]`);
  await p.fill('textarea', script);
  await p.click('form.run-form button[type=submit]');
  await p.waitForURL(/#\/invocations\/inv-/, { timeout: WAIT });
  return new URL(p.url()).hash.split('/').pop();
}

async function rowStatus(p, instanceId) {
  return p.$eval(`tr[data-instance="${instanceId}"] td:nth-child(2) .badge`, e => e.textContent).catch(() => '');
}

async function outputText(p, instanceId) {
  return p.$eval(`section.output-card[data-instance="${instanceId}"] pre.output`, e => e.textContent).catch(() => '');
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(BIN), `build drover first (${BIN})`);
  const serverDir = join(dir, 'server');
  const set = spawnSync(BIN, ['admin', 'set-password', '--data-dir', serverDir], { input: `${ROOT_PASSWORD}\n` });
  assert.equal(set.status, 0, String(set.stderr));
  // Outputs up to 100 MiB are kept whole (the default keeps 16 MiB), so the
  // 20 MB output below is stored and read back in slices.
  const server = startProcess(['server', '--data-dir', serverDir, '--listen', '127.0.0.1:0', '--max-output-bytes', String(100 << 20)], 'server');
  const addr = await until('the server address', () => {
    const f = join(serverDir, 'server.addr');
    return existsSync(f) && readFileSync(f, 'utf8').trim();
  });
  base = `https://${addr}`;
  browser = await freshBrowser('root');
  page = browser.pages()[0] || await browser.newPage();
  await until('the server to answer', async () => (await page.goto(`${base}/`)).ok());
  assert.ok(server.exitCode === null, server.log());
});

after(async () => {
  for (const b of profiles) await b.close();
  for (const c of children.reverse()) {
    if (c.exitCode === null) c.kill('SIGTERM');
  }
  await Promise.all(children.map(c => (c.exitCode === null ? new Promise(r => c.once('exit', r)) : null)));
  rmSync(dir, { recursive: true, force: true });
});

const instanceIds = [];

test('the console is served with a strict CSP and HSTS', async () => {
  const r = await page.goto(`${base}/`);
  const h = r.headers();
  assert.match(h['content-security-policy'], /script-src 'self'/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
  assert.match(h['strict-transport-security'], /max-age=\d+/);
});

test('a wrong password is refused and root signs in', async () => {
  await page.goto(`${base}/`);
  await page.fill('#login-user', 'root');
  await page.fill('#login-pass', 'not-the-password');
  await page.click('button[type=submit]');
  await page.waitForSelector('.error', { timeout: WAIT });
  assert.match(await page.textContent('.error'), /wrong/);
  assert.equal(await page.$('#who'), null);
  await signIn(page, 'root', ROOT_PASSWORD);
  assert.match(await page.textContent('#who'), /root/);
  await page.waitForSelector('.stats', { timeout: WAIT });
  await shot(page, '01-overview-empty');
});

test('root adds two instances through the command the console shows', async () => {
  await go(page, '#/instances');
  await page.click('text=Add instances');
  await page.fill('dialog input >> nth=1', '5');
  await page.click('dialog >> text=Create register code');
  const cmd = (await page.textContent('#agent-command', { timeout: WAIT })).trim();
  assert.match(cmd, /^drover agent --server https:\/\/127\.0\.0\.1:\d+ --register-code \S+$/);
  await shot(page, '02-add-instances');
  await page.click('dialog >> text=Close');
  // Exactly the shown command, with this test's binary and its own data dir.
  const args = cmd.split(/\s+/).slice(1);
  for (const i of [1, 2]) startProcess([...args, '--data-dir', join(dir, `agent-${i}`)], `agent-${i}`);
  await until('two instances online in the list', async () => {
    await go(page, '#/instances');
    const online = await page.$$eval('tbody tr .badge', b => b.filter(x => x.textContent === 'online').length);
    return online === 2;
  });
  instanceIds.push(...await page.$$eval('tbody tr td:first-child .mono', e => e.map(x => x.textContent)));
  assert.equal(instanceIds.length, 2);
  await shot(page, '03-instances');
  await axeCheck(page, 'instances');
});

test('a run on two instances streams both outputs live', async () => {
  const inv = await runFromPage(page, 'echo "first line"; sleep 8; echo "second line"', instanceIds);
  // Both outputs show the first line while their tasks still run: pushed, not at the end.
  for (const id of instanceIds) {
    await until(`live output of ${id}`, async () => (await outputText(page, id)).includes('first line')
      && (await rowStatus(page, id)) === 'running');
    assert.ok(!(await outputText(page, id)).includes('second line'));
  }
  await shot(page, '04-invocation-live');
  for (const id of instanceIds) {
    await until(`the end of ${id}`, async () => (await rowStatus(page, id)) === 'success');
    await until(`all output of ${id}`, async () => (await outputText(page, id)).includes('second line'));
  }
  assert.ok(inv.startsWith('inv-'));
  await axeCheck(page, 'invocation');
});

test('grouped results collapse identical outputs and diff differing ones', async () => {
  await runFromPage(page, 'echo same everywhere', instanceIds);
  for (const id of instanceIds) await until('success', async () => (await rowStatus(page, id)) === 'success');
  await page.click('role=tab[name="Grouped results"]');
  await until('one group of two', async () => {
    const counts = await page.$$eval('section.group', g => g.map(x => x.dataset.count));
    return counts.length === 1 && counts[0] === '2';
  });
  assert.match(await page.textContent('#panel-groups .summary'), /Group 1: 2 instances, success, exit 0/);

  // The agents differ in their process ids, so these outputs differ.
  await runFromPage(page, 'echo common; echo "agent $PPID"', instanceIds);
  for (const id of instanceIds) await until('success', async () => (await rowStatus(page, id)) === 'success');
  await page.click('role=tab[name="Grouped results"]');
  await until('two groups of one', async () => {
    const counts = await page.$$eval('section.group', g => g.map(x => x.dataset.count));
    return counts.length === 2 && counts.every(c => c === '1');
  });
  await page.click('text=Show difference');
  await page.waitForSelector('pre.diff', { timeout: WAIT });
  const diff = await page.textContent('pre.diff');
  assert.match(diff, /^ {2}common$/m);
  assert.match(diff, /^- agent \d+$/m);
  assert.match(diff, /^\+ agent \d+$/m);
  await shot(page, '05-grouped-results');
  await axeCheck(page, 'grouped results');
});

test('cancel one instance while the other keeps running', async () => {
  await runFromPage(page, 'echo started; sleep 60', instanceIds);
  const [a, b] = instanceIds;
  for (const id of instanceIds) await until(`${id} running`, async () => (await rowStatus(page, id)) === 'running');
  await page.click(`tr[data-instance="${a}"] button[aria-label="Cancel on ${a}"]`);
  await until(`${a} ended`, async () => ['terminated', 'cancelled'].includes(await rowStatus(page, a)));
  assert.equal(await rowStatus(page, b), 'running');
  await shot(page, '06-cancel-one');
  await page.click('text=Cancel all');
  await until(`${b} ended`, async () => ['terminated', 'cancelled'].includes(await rowStatus(page, b)));
});

test('output with markup shows as text and nothing runs', async () => {
  const evil = `echo '<script>window.__pwned=1</script>'; echo '<img src=x onerror="window.__pwned=2">'; printf '\\033[31mred\\033[0m plain\\n'`;
  await runFromPage(page, evil, [instanceIds[0]]);
  await until('output', async () => (await outputText(page, instanceIds[0])).includes('plain'));
  const text = await outputText(page, instanceIds[0]);
  assert.ok(text.includes('<script>window.__pwned=1</script>'), text);
  assert.ok(text.includes('<img src=x onerror="window.__pwned=2">'), text);
  assert.equal(await page.evaluate(() => document.querySelectorAll('main img, pre script').length), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  // The ANSI colour became a class on a span, not markup.
  assert.equal(await page.$eval('pre.output span.a-fg1', e => e.textContent), 'red');
});

test('a 20 MB output opens in slices, never whole', async () => {
  const slices = [];
  page.on('request', r => {
    if (r.url().endsWith('/console/api') && r.headers()['x-tc-action'] === 'DescribeInvocationTaskOutput') {
      slices.push(JSON.parse(r.postData() || '{}'));
    }
  });
  await runFromPage(page, "head -c 20000000 /dev/zero | tr '\\0' 'x' | fold -w 100", [instanceIds[0]]);
  await until('the big task to finish', async () => (await rowStatus(page, instanceIds[0])) === 'success', 120_000);
  await page.reload();
  await page.waitForSelector('pre.output', { timeout: WAIT });
  await until('the viewer info', async () => /of 19\.\d MiB/.test(await page.textContent('.output-nav .muted')));
  const shown = (await outputText(page, instanceIds[0])).length;
  assert.ok(shown > 0 && shown <= 70_000, `the viewer holds ${shown} characters`);
  // 200,000 lines of 100 x, the last without a newline.
  const total = 20_199_999;
  await page.click('text=Last »');
  let info = '';
  await until('the last page', async () => {
    info = await page.textContent('.output-nav .muted');
    const m = /bytes ([\d,]+)–([\d,]+) of/.exec(info);
    if (!m) throw new Error(info);
    if (Number(m[2].replaceAll(',', '')) === total && Number(m[1].replaceAll(',', '')) > total - 70_000) return true;
    throw new Error(info);
  });
  assert.match(await outputText(page, instanceIds[0]), /\nx{100}$/);
  assert.ok(slices.length >= 2);
  for (const s of slices) assert.ok(s.Limit <= 65536, `a slice asked for ${s.Limit} bytes`);
  await shot(page, '07-large-output');
});

test('a public command runs with its parameters, defaults and descriptions shown', async () => {
  await go(page, '#/run?command=cmd-diskuse1');
  const path = page.getByLabel('path', { exact: true });
  assert.equal(await path.inputValue(), '/');
  assert.match(await page.textContent('.params'), /only its own filesystem is walked/);
  await page.getByLabel('top', { exact: true }).fill('3');
  await page.check(`.pick-list input[value="${instanceIds[0]}"]`);
  await page.click('form.run-form button[type=submit]');
  await page.waitForURL(/#\/invocations\/inv-/, { timeout: WAIT });
  await until('disk-usage to end', async () => ['success', 'failed'].includes(await rowStatus(page, instanceIds[0])));
  assert.match(await page.textContent('.meta'), /disk-usage/);
  await until('df output', async () => /Filesystem|Mounted/.test(await outputText(page, instanceIds[0])));
});

test('history lists past invocations and opens one', async () => {
  await go(page, '#/history');
  const rows = await page.$$('tbody tr');
  assert.ok(rows.length >= 6, `history shows ${rows.length} rows`);
  await shot(page, '08-history');
  await axeCheck(page, 'history');
  await page.click('tbody tr:first-child td:first-child a');
  await page.waitForURL(/#\/invocations\/inv-/, { timeout: WAIT });
  await page.waitForSelector('tr[data-instance]', { timeout: WAIT });
});

test('the other main pages render, with no serious accessibility problems', async () => {
  for (const [hash, name] of [['#/', '09-overview'], ['#/run', '10-run'], ['#/commands', '11-commands'],
    ['#/schedules', '12-schedules'], ['#/secrets', '13-secrets'], ['#/webhooks', '14-webhooks'],
    ['#/access', '15-access'], ['#/audit', '16-audit']]) {
    await go(page, hash);
    assert.equal(await page.$('main .error'), null, `${hash}: ${await page.textContent('main')}`);
    await shot(page, name);
    await axeCheck(page, hash);
  }
  await page.emulateMedia({ colorScheme: 'dark' });
  await go(page, '#/');
  await shot(page, '17-overview-dark');
  await axeCheck(page, 'overview (dark)');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('the policy editor asks the engine and points at the bad part', async () => {
  await go(page, '#/access?tab=policies');
  await page.waitForSelector('textarea[aria-label="Policy document (JSON)"]', { timeout: WAIT });
  const editor = page.locator('textarea[aria-label="Policy document (JSON)"]');
  await editor.fill('{"version": "2.0", "statement": [{"effect": "maybe", "action": ["tat:RunCommand"], "resource": ["*"]}]}');
  await page.click('text=Validate');
  const err = await page.waitForSelector('#acc-policies .error', { timeout: WAIT });
  assert.match(await err.textContent(), /statement\[0\]\.effect/);
  // The editor selects the part the engine named.
  const sel = await editor.evaluate(t => t.value.slice(t.selectionStart, t.selectionStart + 8));
  assert.equal(sel, '"effect"');
  await editor.fill('{"version": "2.0", "statement": [{"effect": "allow", "action": ["tat:Describe*"], "resource": ["*"]}]}');
  await page.click('text=Validate');
  await page.waitForSelector('#acc-policies .ok-text', { timeout: WAIT });
  await shot(page, '21-policy-editor');
});

test('a secret is stored from the console and its value never comes back', async () => {
  await go(page, '#/secrets');
  await page.click('text=New secret');
  await page.getByLabel('Name', { exact: true }).fill('db_password');
  await page.getByLabel('Value', { exact: true }).fill('s3cr3t-value-never-shown');
  await page.click('dialog >> text=Save');
  await until('the secret in the list', async () => (await page.textContent('main')).includes('db_password'));
  assert.ok(!(await page.content()).includes('s3cr3t-value-never-shown'));
  const r = await consoleCall(page, 'DescribeSecrets', {});
  assert.ok(!JSON.stringify(r).includes('s3cr3t-value-never-shown'));
});

test('a sub-user signs in and sees what the engine denies disabled, with the reason', async () => {
  const add = await consoleCall(page, 'AddUser', { Name: 'ann', Password: ANN_PASSWORD, ConsoleLogin: 1 }, true);
  assert.equal(add.Error, undefined, JSON.stringify(add));
  const pol = await consoleCall(page, 'CreatePolicy', {
    PolicyName: 'read-only',
    PolicyDocument: JSON.stringify({ version: '2.0', statement: [{ effect: 'allow', action: ['tat:Describe*'], resource: ['*'] }] }),
  }, true);
  assert.equal(pol.Error, undefined, JSON.stringify(pol));
  const att = await consoleCall(page, 'AttachUserPolicy', { AttachUin: Number(add.Uin), PolicyId: pol.PolicyId }, true);
  assert.equal(att.Error, undefined, JSON.stringify(att));

  const ctx = await freshBrowser('ann');
  const ann = ctx.pages()[0] || await ctx.newPage();
  await signIn(ann, 'ann', ANN_PASSWORD);
  assert.match(await ann.textContent('#who'), /ann/);
  await go(ann, '#/run');
  const run = await ann.$('form.run-form button[type=submit]');
  assert.equal(await run.isDisabled(), true);
  assert.match(await ann.textContent('form.run-form .denied'), /tat:RunCommand.*denied/);
  await shot(ann, '18-denied-run');
  await go(ann, '#/instances');
  assert.equal(await ann.isDisabled('text=Add instances'), true);
  // The engine, not the page, is the wall: a forced call is refused too.
  const before = (await consoleCall(page, 'DescribeInvocations', {})).TotalCount;
  const forced = await consoleCall(ann, 'RunCommand', { Content: Buffer.from('echo hi').toString('base64'), InstanceIds: [instanceIds[0]] });
  assert.match(forced.Error.Code, /UnauthorizedOperation/);
  assert.equal((await consoleCall(page, 'DescribeInvocations', {})).TotalCount, before);
});

test('a user who must change the password sets a new one at sign-in', async () => {
  const old = 'Dee-console-pass-1';
  const fresh = 'Dee-console-pass-2';
  const add = await consoleCall(page, 'AddUser', { Name: 'dee', Password: old, ConsoleLogin: 1, NeedResetPassword: 1 }, true);
  assert.equal(add.Error, undefined, JSON.stringify(add));
  const ctx = await freshBrowser('dee');
  const dee = ctx.pages()[0] || await ctx.newPage();
  await dee.goto(`${base}/`);
  await dee.fill('#login-user', 'dee');
  await dee.fill('#login-pass', old);
  await dee.click('button[type=submit]');
  // The right password alone does not get in: the page asks for a new one.
  await dee.waitForSelector('#login-new', { state: 'visible', timeout: WAIT });
  assert.equal(await dee.$('#who'), null);
  await dee.fill('#login-new', fresh);
  await dee.click('button[type=submit]');
  await dee.waitForSelector('#who', { timeout: WAIT });
  assert.match(await dee.textContent('#who'), /dee/);
  // The old password is gone; the new one works without a further reset.
  const again = await freshBrowser('dee-again');
  const p2 = again.pages()[0] || await again.newPage();
  await p2.goto(`${base}/`);
  await p2.fill('#login-user', 'dee');
  await p2.fill('#login-pass', old);
  await p2.click('button[type=submit]');
  await until('the old password to be refused', async () => /wrong/.test(await p2.textContent('.login')));
  assert.equal(await p2.isVisible('#login-new'), false);
  await signIn(p2, 'dee', fresh);
  assert.match(await p2.textContent('#who'), /dee/);
});

test('the Run button follows the engine for the instances picked', async () => {
  const [a, b] = instanceIds;
  const owner = (await consoleCall(page, 'GetUserAppId', {}, true)).OwnerUin;
  const add = await consoleCall(page, 'AddUser', { Name: 'cy', Password: 'Cy-console-pass-12', ConsoleLogin: 1 }, true);
  assert.equal(add.Error, undefined, JSON.stringify(add));
  const pol = await consoleCall(page, 'CreatePolicy', {
    PolicyName: 'run-on-a',
    PolicyDocument: JSON.stringify({
      version: '2.0',
      statement: [
        { effect: 'allow', action: ['tat:Describe*'], resource: ['*'] },
        // A run also names the command it creates.
        { effect: 'allow', action: ['tat:RunCommand'], resource: [`qcs::tat:ap-guangzhou:uin/${owner}:instance/${a}`, `qcs::tat:ap-guangzhou:uin/${owner}:command/*`] },
      ],
    }),
  }, true);
  assert.equal(pol.Error, undefined, JSON.stringify(pol));
  await consoleCall(page, 'AttachUserPolicy', { AttachUin: Number(add.Uin), PolicyId: pol.PolicyId }, true);
  const ctx = await freshBrowser('cy');
  const cy = ctx.pages()[0] || await ctx.newPage();
  await signIn(cy, 'cy', 'Cy-console-pass-12');
  await go(cy, '#/run');
  const run = 'form.run-form button[type=submit]';
  await cy.check(`.pick-list input[value="${a}"]`);
  await until('Run enabled for instance A', async () => !(await cy.isDisabled(run)));
  await cy.check(`.pick-list input[value="${b}"]`);
  await until('Run disabled once B is picked', async () => cy.isDisabled(run));
  assert.match(await cy.textContent('form.run-form .denied'), new RegExp(b));
  await cy.uncheck(`.pick-list input[value="${b}"]`);
  await until('Run enabled again', async () => !(await cy.isDisabled(run)));
  await cy.fill('textarea', 'echo allowed-run');
  await cy.click(run);
  await cy.waitForURL(/#\/invocations\/inv-/, { timeout: WAIT });
  await until('the allowed run to succeed', async () => (await rowStatus(cy, a)) === 'success');
});

test('a user with no policy gets nothing from the console\'s own endpoints', async () => {
  const add = await consoleCall(page, 'AddUser', { Name: 'bob', Password: 'Bob-console-pass-1', ConsoleLogin: 1 }, true);
  assert.equal(add.Error, undefined, JSON.stringify(add));
  const inv = (await consoleCall(page, 'DescribeInvocations', { Limit: 1 })).InvocationSet[0].InvocationId;
  const ctx = await freshBrowser('bob');
  const bob = ctx.pages()[0] || await ctx.newPage();
  await signIn(bob, 'bob', 'Bob-console-pass-1');
  const view = (path, body) => bob.evaluate(async ([path, body]) => {
    const r = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('drover.csrf') || '' },
      body: JSON.stringify(body),
    });
    return (await r.json()).Response;
  }, [path, body]);
  const groups = await view('/console/groups', { InvocationId: inv });
  assert.match(groups.Error.Code, /UnauthorizedOperation/, JSON.stringify(groups));
  assert.equal(groups.GroupSet, undefined);
  const can = await view('/console/can', { Actions: [{ Action: 'RunCommand' }, { Action: 'DescribeInvocations' }] });
  assert.deepEqual(can.Results.map(r => r.Allowed), [false, false]);
  // The live view of someone else's invocation pushes an error, never its tasks.
  await go(bob, `#/invocations/${inv}`);
  await bob.waitForSelector('.summary .error', { timeout: 15000 }).catch(async e => {
    throw new Error(`${e.message}\n${await bob.textContent('main')}`);
  });
  assert.equal(await bob.$$eval('tr[data-instance]', r => r.length), 0);
  // Without the CSRF token, even an allowed question is refused.
  const noCsrf = await bob.evaluate(async () => (await (await fetch('/console/can', { method: 'POST', body: '{"Actions":[]}' })).json()).Response);
  assert.match(noCsrf.Error.Code, /UnauthorizedOperation/);
});

/** Opens a WebSocket handshake on /console/push; resolves to the HTTP status. */
function pushHandshake(origin, cookie) {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = httpsRequest({
      host: u.hostname, port: u.port, path: '/console/push', rejectUnauthorized: false,
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', Origin: origin, ...(cookie ? { Cookie: cookie } : {}),
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', res => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  });
}

test('the push channel refuses other origins and visitors without a session', async () => {
  const cookies = await browser.cookies(base);
  const session = cookies.find(c => c.name === 'drover_session');
  assert.ok(session, 'root is signed in');
  const cookie = `drover_session=${session.value}`;
  assert.equal(await pushHandshake(base, cookie), 101);
  assert.equal(await pushHandshake('https://evil.example', cookie), 403);
  assert.equal(await pushHandshake(base, null), 403);
  assert.equal(await pushHandshake(base, 'drover_session=forged'), 403);
});

test('the console works on a phone-sized screen', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await go(page, '#/');
  assert.equal(await page.isVisible('aside nav'), false);
  await page.click('text=☰ Menu');
  assert.equal(await page.isVisible('aside nav'), true);
  await shot(page, '19-phone-menu');
  await page.click('aside >> text=History');
  await page.waitForSelector('tbody tr', { timeout: WAIT });
  assert.equal(await page.isVisible('aside nav'), false);
  await shot(page, '20-phone-history');
  await axeCheck(page, 'history (phone)');
  await page.setViewportSize({ width: 1280, height: 860 });
});
