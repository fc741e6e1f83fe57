// Browser tests of the console's terminal, sessions list and replay, in
// Debian's chromium (playwright-core) against a real drover server and a
// real agent process, both started here on 127.0.0.1:0 in a fresh data
// directory. The screen is read from xterm.js's DOM rows (what a person
// sees), never from a test hook; each new page gets an axe-core check.
//
// Run: node --test console/tests/terminal.test.mjs   (after `cargo build`;
// DROVER_BIN and CHROMIUM override the binaries' paths).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, writeFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { parseCast } from '../src/term/cast.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const BIN = process.env.DROVER_BIN || join(repo, 'target', 'debug', 'drover');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const AXE = readFileSync(join(here, '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const ROOT_PASSWORD = 'root-terminal-pass-1';
const SHOTS = join(repo, 'target', 'console-screenshots');
// Generous: the machine is shared with other builds.
const WAIT = Number(process.env.TERM_TEST_WAIT || 60_000);

const dir = mkdtempSync(join(tmpdir(), 'drover-console-term-'));
const serverDir = join(dir, 'server');
const children = [];
const contexts = [];
const pageErrors = [];
let base;
let page;
let instanceId;

function startProcess(args) {
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DROVER_LOG: 'warn' } });
  let log = '';
  child.stdout.on('data', d => { log += d; });
  child.stderr.on('data', d => { log += d; });
  child.log = () => log;
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

/** A browser with its own profile; clipboard allowed for the copy/paste test. */
async function freshBrowser(name) {
  const ctx = await chromium.launchPersistentContext(join(dir, `chromium-${name}`), {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1100, height: 760 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  contexts.push(ctx);
  const p = ctx.pages()[0] || await ctx.newPage();
  p.on('pageerror', e => pageErrors.push(`${name}: ${e.message}`));
  return { ctx, p };
}

async function shot(p, name) {
  await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function axeCheck(p, name) {
  await p.evaluate(AXE);
  const r = await p.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }));
  });
  const bad = r.filter(v => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: accessibility violations ${JSON.stringify(bad, null, 1)}`);
}

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

async function go(p, hash) {
  await p.evaluate(h => {
    document.body.dataset.page = '';
    if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = h;
  }, hash);
  await p.waitForFunction(h => document.body.dataset.page === h, hash, { timeout: WAIT });
}

/** The terminal's screen as xterm.js drew it, one line per row. */
async function screen(p) {
  return p.$$eval('.term-box .xterm-rows > div', rows => rows.map(r => r.textContent.replace(/\s+$/, '')).join('\n'));
}

async function waitScreen(p, what, test, timeout = WAIT) {
  let last = '';
  try {
    return await until(what, async () => { last = await screen(p); return test(last); }, timeout);
  } catch (e) {
    throw new Error(`${e.message}\n--- screen ---\n${last}`);
  }
}

/** Whether the screen's last non-empty line is a shell prompt (ends in # or $). */
function atPrompt(s) {
  const last = s.split('\n').filter(l => l.trim()).pop() || '';
  return /[#$]$/.test(last);
}

/** Types into the terminal as a person would (the terminal has focus). */
async function typeLine(p, text) {
  await p.keyboard.type(text);
  await p.keyboard.press('Enter');
}

/** Waits for the terminal's session to open; on failure says what the page shows. */
async function waitOpened(p) {
  try {
    await p.waitForSelector('.term-box[data-session]', { timeout: WAIT });
  } catch (e) {
    throw new Error(`${e.message}\n--- page ---\n${await p.textContent('.page-head').catch(() => '')} ${await p.textContent('main .error').catch(() => '')}\n--- screen ---\n${await screen(p)}`);
  }
  return p.getAttribute('.term-box', 'data-session');
}

async function sessionCount() {
  const r = await consoleCall(page, 'DescribeSessions', { Limit: 1 });
  assert.equal(r.Error, undefined, JSON.stringify(r));
  return r.TotalCount;
}

before(async () => {
  assert.ok(existsSync(BIN), `build drover first (${BIN})`);
  mkdirSync(SHOTS, { recursive: true });
  const set = spawnSync(BIN, ['admin', 'set-password', '--data-dir', serverDir], { input: `${ROOT_PASSWORD}\n` });
  assert.equal(set.status, 0, String(set.stderr));
  const server = startProcess(['server', '--data-dir', serverDir, '--listen', '127.0.0.1:0', '--ssh-listen', '127.0.0.1:0']);
  const addr = await until('the server address', () => {
    const f = join(serverDir, 'server.addr');
    return existsSync(f) && readFileSync(f, 'utf8').trim();
  });
  base = `https://${addr}`;
  const b = await freshBrowser('root');
  page = b.p;
  await b.ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await until('the server to answer', async () => (await page.goto(`${base}/`)).ok());
  await signIn(page, 'root', ROOT_PASSWORD);
  const code = await consoleCall(page, 'CreateRegisterCode', { InstanceNamePrefix: 'term', RegisterLimit: 1 });
  assert.equal(code.Error, undefined, JSON.stringify(code));
  startProcess(['agent', '--server', base, '--register-code', code.RegisterCodeValue, '--data-dir', join(dir, 'agent')]);
  instanceId = await until('the agent online', async () => {
    const r = await consoleCall(page, 'DescribeAutomationAgentStatus', {});
    const a = (r.AutomationAgentSet || []).find(x => x.AgentStatus === 'Online');
    return a && a.InstanceId;
  });
  // A file for vi, with a line that only vi shows.
  writeFileSync(join(dir, 'notes.txt'), 'vi-marker-line\nsecond line\n');
  assert.ok(server.exitCode === null, server.log());
});

after(async () => {
  for (const c of contexts) await c.close();
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map(c => (c.exitCode === null ? new Promise(r => c.once('exit', r)) : null)));
  rmSync(dir, { recursive: true, force: true });
});

// What the live terminal showed, for the replay to match.
let recorded = { id: '', finalScreen: '', topAt: 0 };

test('a terminal from the Instances page runs full-screen programs, follows resizes, copies, pastes and exits', async () => {
  await go(page, '#/instances');
  const open = `button[aria-label^="Terminal on"]`;
  await until('the Terminal button enabled', async () => !(await page.isDisabled(open)));
  await page.click(open);
  recorded.id = await waitOpened(page);
  const opened = Date.now();
  assert.match(await page.textContent('.page-head'), new RegExp(`Terminal ${instanceId}`));
  await axeCheck(page, 'terminal');

  // Colours (through the CSP bridge: the palette lives in xterm's own
  // <style>, which the CSP alone would refuse) and UTF-8.
  await typeLine(page, "printf '\\033[31mRED\\033[0m \\303\\251t\\303\\251\\n'");
  await waitScreen(page, 'colour output', s => /^RED été$/m.test(s));
  const red = await page.$$eval('.term-box .xterm-rows span', spans => {
    const s = spans.find(x => x.textContent === 'RED');
    return s && getComputedStyle(s).color;
  });
  assert.equal(red, 'rgb(241, 76, 76)', 'the red of the theme applies');

  // Wide characters take two cells: 50 of them fill floor(cols/2) per row.
  await typeLine(page, 'stty size');
  const [rows0, cols0] = (await waitScreen(page, 'stty size', s => /^(\d+) (\d+)$/m.exec(s))).slice(1).map(Number);
  assert.equal(String(cols0), await page.getAttribute('.term-box', 'data-cols'));
  assert.equal(String(rows0), await page.getAttribute('.term-box', 'data-rows'));
  await typeLine(page, "clear; for i in $(seq 50); do printf '\\346\\274\\242'; done; echo");
  const wide = await waitScreen(page, 'wide characters', s => s.split('\n').some(l => /^漢+$/.test(l)) && s);
  const runs = wide.split('\n').filter(l => /^漢+$/.test(l)).map(l => l.length);
  assert.equal(runs[0], Math.min(50, Math.floor(cols0 / 2)), `rows of wide characters: ${runs}`);
  assert.equal(runs.reduce((a, b) => a + b, 0), 50);

  // top draws its screen and quits on q.
  await typeLine(page, 'top -d 1');
  await waitScreen(page, 'top', s => s.includes('load average') && /PID +USER/.test(s));
  recorded.topAt = (Date.now() - opened) / 1000;
  await shot(page, '30-terminal-top');
  await new Promise(r => setTimeout(r, 1500)); // a stretch of top in the recording
  await page.keyboard.press('q');
  // Typed before top has quit, keys are lost: top restores the terminal
  // with TCSAFLUSH, which drops pending input. Wait for the shell.
  await waitScreen(page, 'the shell after top', atPrompt);
  await typeLine(page, 'echo top-$((40+2))');
  await waitScreen(page, 'the prompt after top', s => s.includes('top-42'));

  // vi uses the alternate screen: its text goes away when it quits.
  await typeLine(page, `vi ${join(dir, 'notes.txt')}`);
  await waitScreen(page, 'vi', s => s.includes('vi-marker-line') && /^~/m.test(s));
  await page.keyboard.type(':q!');
  await page.keyboard.press('Enter');
  await waitScreen(page, 'vi gone', s => !s.includes('vi-marker-line') && s.includes('notes.txt'));
  await waitScreen(page, 'the shell after vi', atPrompt);

  // The terminal follows the window; the shell sees the new size.
  await page.setViewportSize({ width: 820, height: 560 });
  await until('a smaller terminal', async () => Number(await page.getAttribute('.term-box', 'data-cols')) < cols0);
  const cols1 = await page.getAttribute('.term-box', 'data-cols');
  const rows1 = await page.getAttribute('.term-box', 'data-rows');
  await typeLine(page, 'clear; stty size');
  await waitScreen(page, 'the new size', s => s.includes(`${rows1} ${cols1}`));
  assert.ok(Number(rows1) < rows0);
  await page.setViewportSize({ width: 1100, height: 760 });

  // Paste from the clipboard (the button; Ctrl+Shift+V is the browser's
  // paste), then copy the screen back.
  await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((6*7))'));
  await page.click('text=Paste');
  await waitScreen(page, 'the pasted line', s => s.includes('echo pasted-$((6*7))'));
  await page.keyboard.press('Enter');
  await waitScreen(page, 'the pasted command ran', s => /^pasted-42$/m.test(s));
  await page.click('text=Copy');
  await until('the screen copied', async () => (await page.evaluate(() => navigator.clipboard.readText())).includes('pasted-42'));

  await page.click('.term-box');
  await typeLine(page, 'exit 7');
  await until('the exit status', async () => (await page.getAttribute('.term-box', 'data-exit')) === '7');
  assert.match(await page.textContent('.page-head [role=status]'), /exit code 7/);
  const final = await waitScreen(page, 'the end note', s => s.includes('session ended: exit code 7') && s);
  recorded.finalScreen = final.slice(0, final.indexOf('[session ended')).replace(/\s+$/, '');
});

test('the session is listed and replays what the terminal showed, with seeking', async () => {
  assert.ok(recorded.id, 'the terminal test recorded a session');
  await go(page, '#/sessions');
  const row = `tr[data-session="${recorded.id}"]`;
  await page.waitForSelector(row, { timeout: WAIT });
  const cells = await page.$$eval(`${row} td`, tds => tds.map(td => td.textContent));
  assert.equal(cells[1], 'root');
  assert.equal(cells[2], instanceId);
  assert.equal(cells[3], 'root');
  assert.match(cells[4], /^console/);
  assert.match(cells[8], /exit 7/);
  await shot(page, '31-sessions');
  await axeCheck(page, 'sessions');

  // The download is a valid asciicast v2 file of this session.
  const cast = await page.evaluate(async href => (await fetch(href)).text(),
    await page.getAttribute(`${row} a[download]`, 'href'));
  const parsed = parseCast(cast);
  assert.ok(parsed.events.some(e => e.code === 'o' && e.data.includes('pasted-42')));
  assert.ok(parsed.events.some(e => e.code === 'r'), 'the resize is in the recording');

  await page.click(`${row} a[aria-label="Replay ${recorded.id}"]`);
  await page.waitForSelector('.term-box.replay', { timeout: WAIT });
  await page.selectOption('select[aria-label="Speed"]', '8');
  await until('the replay to end', async () => (await page.getAttribute('.term-box', 'data-playing')) === 'false'
    && Number(await page.getAttribute('.term-box', 'data-position')) > 0, WAIT);
  const replayed = await waitScreen(page, 'the replayed end', s => s.includes('pasted-42') && s);
  assert.equal(replayed.replace(/\s+$/, ''), recorded.finalScreen);
  await shot(page, '32-replay');
  await axeCheck(page, 'replay');

  // Seeking back to top's moment redraws top; forward to the end, the end.
  const seek = async t => page.evaluate(v => {
    const s = document.querySelector('input.seek');
    s.value = String(v);
    s.dispatchEvent(new Event('input'));
  }, t);
  await seek(recorded.topAt + 0.5);
  await waitScreen(page, 'top again', s => s.includes('load average'));
  const max = Number(await page.getAttribute('input.seek', 'max'));
  await seek(max);
  await waitScreen(page, 'the end again', s => s.replace(/\s+$/, '') === recorded.finalScreen);
});

test('a finished task opens a shell on its instance; an administrator terminates it', async () => {
  const run = await consoleCall(page, 'RunCommand', { Content: Buffer.from('echo from-a-task').toString('base64'), InstanceIds: [instanceId] });
  assert.equal(run.Error, undefined, JSON.stringify(run));
  await go(page, `#/invocations/${run.InvocationId}`);
  const link = `a[aria-label="Open a shell here on ${instanceId}"]`;
  await page.waitForSelector(link, { state: 'visible', timeout: WAIT });
  assert.match(await page.getAttribute(link, 'href'), /user=root$/);
  await page.click(link);
  const id = await waitOpened(page);
  await typeLine(page, 'echo shell-$((2+3))');
  await waitScreen(page, 'the shell', s => /^shell-5$/m.test(s));

  // The administrator, signed in elsewhere, ends it from the sessions list.
  const { p: admin } = await freshBrowser('admin');
  await signIn(admin, 'root', ROOT_PASSWORD);
  await go(admin, '#/sessions');
  const term = `tr[data-session="${id}"] button[aria-label="Terminate ${id}"]`;
  await admin.waitForSelector(term, { timeout: WAIT });
  await admin.click(term);
  await until('the terminal told', async () => /session closed/.test(await page.textContent('.page-head [role=status]')));
  assert.match(await page.textContent('main .error'), /terminated by root/);
});

test('a user without tat:StartSession sees why and no session starts', async () => {
  const add = await consoleCall(page, 'AddUser', { Name: 'nora', Password: 'Nora-term-pass-1', ConsoleLogin: 1 }, true);
  assert.equal(add.Error, undefined, JSON.stringify(add));
  const pol = await consoleCall(page, 'CreatePolicy', {
    PolicyName: 'look-only',
    PolicyDocument: JSON.stringify({ version: '2.0', statement: [{ effect: 'allow', action: ['tat:Describe*'], resource: ['*'] }] }),
  }, true);
  assert.equal(pol.Error, undefined, JSON.stringify(pol));
  await consoleCall(page, 'AttachUserPolicy', { AttachUin: Number(add.Uin), PolicyId: pol.PolicyId }, true);
  const before = await sessionCount();

  const { p: nora } = await freshBrowser('nora');
  await signIn(nora, 'nora', 'Nora-term-pass-1');
  await go(nora, '#/instances');
  const open = 'button[aria-label^="Terminal on"]';
  await until('the reason shown', async () => /tat:StartSession/.test(await nora.textContent('td.row-actions .denied').catch(() => '')));
  assert.equal(await nora.isDisabled(open), true);
  // Going to the page anyway: the server refuses, and says why.
  await go(nora, `#/terminal/${instanceId}`);
  await nora.waitForSelector('main .error', { timeout: WAIT });
  const why = await nora.textContent('main .error');
  assert.match(why, /UnauthorizedOperation/);
  assert.match(why, /tat:StartSession/);
  assert.match(await nora.textContent('.page-head [role=status]'), /refused/);
  await shot(nora, '34-terminal-refused');
  assert.equal(await nora.getAttribute('.term-box', 'data-session'), null);
  assert.equal(await sessionCount(), before, 'no session was opened or recorded');
});

/** Runs OpenSSH's client through the gateway with this key; resolves {status, out}. */
function sshRun(port, key, knownHosts, user, command) {
  return new Promise(resolve => {
    const c = spawn('ssh', ['-p', String(port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
      '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'PreferredAuthentications=publickey',
      '-o', 'ConnectTimeout=30', '-F', '/dev/null', `${user}@127.0.0.1`, '--', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', d => { out += d; });
    c.stderr.on('data', d => { out += d; });
    c.on('exit', status => resolve({ status, out }));
  });
}

test('ssh keys: the page shows the gateway host key, an imported key signs in with OpenSSH, a deleted one does not', async () => {
  await go(page, '#/ssh');
  await page.waitForSelector('#ssh-fingerprint', { timeout: WAIT });
  const shown = (await page.textContent('#ssh-fingerprint')).trim();
  const real = spawnSync('ssh-keygen', ['-l', '-f', join(serverDir, 'ssh', 'ssh_host_ed25519_key.pub')], { encoding: 'utf8' });
  assert.equal(real.status, 0, real.stderr);
  assert.equal(shown, real.stdout.split(' ')[1], 'the fingerprint ssh-keygen computes from the host key');
  await axeCheck(page, 'ssh keys');

  const key = join(dir, 'id_term');
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@term-test', '-f', key]).status, 0);
  chmodSync(key, 0o600);
  const mine = spawnSync('ssh-keygen', ['-l', '-f', `${key}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1];
  await page.fill('.ssh-import textarea', readFileSync(`${key}.pub`, 'utf8'));
  await page.click('.ssh-import button[type=submit]');
  const row = await until('the key listed', async () => {
    const rows = await page.$$eval('.ssh-keys tbody tr', trs => trs.map(tr => [tr.dataset.key, ...[...tr.cells].map(c => c.textContent)]));
    return rows.find(r => r[2] === mine);
  });
  assert.equal(row[3], 'root@term-test', 'the comment names the key');
  await shot(page, '33-ssh-keys');

  // The known_hosts line the page shows is what OpenSSH checks the gateway against.
  const lines = await page.$$eval('#ssh-gateway pre.command', p => p.map(x => x.textContent));
  const port = Number(/-p (\d+) /.exec(lines[0])[1]);
  const known = join(dir, 'known_hosts');
  writeFileSync(known, `${lines[1].replace('[localhost]', '[127.0.0.1]')}\n`);
  const ok = await sshRun(port, key, known, `root+${instanceId}`, 'echo via-ssh-$((20+1))');
  assert.equal(ok.status, 0, ok.out);
  assert.match(ok.out, /via-ssh-21/);

  // Deleted: the same key no longer signs in, and nothing runs.
  const before = await sessionCount();
  await page.click(`.ssh-keys tr[data-key="${row[0]}"] button[aria-label="Delete key ${mine}"]`);
  await until('the key gone', async () => !(await page.$(`.ssh-keys tr[data-key="${row[0]}"]`)));
  const refused = await sshRun(port, key, known, `root+${instanceId}`, 'echo should-not-run');
  assert.notEqual(refused.status, 0);
  assert.doesNotMatch(refused.out, /should-not-run/);
  assert.match(refused.out, /Permission denied/);
  assert.equal(await sessionCount(), before);
});

test('ssh keys of a sub-user: an administrator imports one from the Access page, it signs that user in (not anyone else), and deleting it locks them out', async () => {
  const kim = await consoleCall(page, 'AddUser', { Name: 'kim', Password: 'Kim-term-pass-1', ConsoleLogin: 1 }, true);
  assert.equal(kim.Error, undefined, JSON.stringify(kim));
  const key = join(dir, 'id_kim');
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kim@laptop', '-f', key]).status, 0);
  chmodSync(key, 0o600);
  const fp = spawnSync('ssh-keygen', ['-l', '-f', `${key}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1];

  // Where the gateway is and its host key, as the ssh page shows them.
  await go(page, '#/ssh');
  await page.waitForSelector('#ssh-gateway pre.command', { timeout: WAIT });
  const lines = await page.$$eval('#ssh-gateway pre.command', p => p.map(x => x.textContent));
  const port = Number(/-p (\d+) /.exec(lines[0])[1]);
  const known = join(dir, 'known_hosts_kim');
  writeFileSync(known, `${lines[1].replace('[localhost]', '[127.0.0.1]')}\n`);

  await go(page, '#/access');
  await page.click('button[aria-label="SSH keys of kim"]');
  const dlg = 'dialog[aria-label="SSH keys of kim"]';
  await page.waitForSelector(`${dlg} .ssh-import textarea`, { timeout: WAIT });
  assert.match(await page.textContent(`${dlg} .ssh-keys`), /No ssh keys: kim signs in/);
  await page.fill(`${dlg} .ssh-import textarea`, readFileSync(`${key}.pub`, 'utf8'));
  await page.click(`${dlg} .ssh-import button[type=submit]`);
  const row = await until('the key listed for kim', async () => {
    const rows = await page.$$eval(`${dlg} .ssh-keys tbody tr`, trs => trs.map(tr => [tr.dataset.key, ...[...tr.cells].map(c => c.textContent)]));
    return rows.find(r => r[2] === fp);
  });
  assert.equal(row[3], 'kim@laptop');
  await axeCheck(page, 'ssh keys of a sub-user');
  await shot(page, '35-ssh-keys-of-kim');
  // It is kim's, not the administrator's own.
  const own = await consoleCall(page, 'DescribeSshPublicKeys', {}, true);
  assert.equal(own.Error, undefined, JSON.stringify(own));
  assert.ok(!(own.SshPublicKeys || []).some(k => k.Fingerprint === fp), JSON.stringify(own));

  // OpenSSH signs kim in with it (kim may not open sessions, so the
  // gateway says why and nothing runs), and not as root.
  const before = await sessionCount();
  const asKim = await sshRun(port, key, known, `kim+${instanceId}`, 'echo as-kim');
  assert.equal(asKim.status, 1, asKim.out);
  assert.match(asKim.out, /tat:StartSession/);
  assert.doesNotMatch(asKim.out, /as-kim/);
  const asRoot = await sshRun(port, key, known, `root+${instanceId}`, 'echo as-root');
  assert.notEqual(asRoot.status, 0);
  assert.match(asRoot.out, /Permission denied/);
  assert.doesNotMatch(asRoot.out, /as-root/);

  await page.click(`${dlg} button[aria-label="Delete key ${fp}"]`);
  await until('the key gone', async () => !(await page.$(`${dlg} .ssh-keys tr[data-key="${row[0]}"]`)));
  const after = await sshRun(port, key, known, `kim+${instanceId}`, 'echo as-kim');
  assert.notEqual(after.status, 0);
  assert.match(after.out, /Permission denied/);
  assert.equal(await sessionCount(), before, 'nothing was opened');
  // Leaving the page (here as the Back button would) takes its dialog along.
  await go(page, '#/instances');
  await until('the dialog closed', async () => !(await page.$('dialog[open]')));
});

/** One broadcast pane's screen, one line per row. */
async function paneText(p, id) {
  return p.$$eval(`.bc-box[data-instance="${id}"] .xterm-rows > div`,
    rows => rows.map(r => r.textContent.replace(/\s+$/, '')).join('\n'));
}

async function waitPane(p, id, text) {
  let last = '';
  try {
    return await until(`"${text}" in the pane of ${id}`, async () => { last = await paneText(p, id); return last.includes(text); });
  } catch (e) {
    throw new Error(`${e.message}\n--- pane ---\n${last}`);
  }
}

test('broadcast: one line goes to the terminals of two instances; keys go to one pane or, asked, to all', async () => {
  const code = await consoleCall(page, 'CreateRegisterCode', { InstanceNamePrefix: 'bc', RegisterLimit: 1 });
  assert.equal(code.Error, undefined, JSON.stringify(code));
  startProcess(['agent', '--server', base, '--register-code', code.RegisterCodeValue, '--data-dir', join(dir, 'agent-bc')]);
  const ids = await until('two agents online', async () => {
    const r = await consoleCall(page, 'DescribeAutomationAgentStatus', {});
    const on = (r.AutomationAgentSet || []).filter(x => x.AgentStatus === 'Online').map(x => x.InstanceId);
    return on.length >= 2 && on.slice(0, 2);
  });
  // Through the picker, as a person would.
  await go(page, '#/broadcast');
  for (const id of ids) await page.check(`input[type=checkbox][value="${id}"]`);
  await page.click('form.term-pick button[type=submit]');
  await page.waitForFunction(n => document.querySelectorAll('.bc-box[data-session]').length === n, ids.length, { timeout: WAIT });
  const sessions = await page.$$eval('.bc-box[data-session]', bs => bs.map(b => b.dataset.session));
  assert.equal(new Set(sessions).size, 2, `one session per pane: ${sessions}`);
  await axeCheck(page, 'broadcast');
  await shot(page, 'broadcast');

  await page.fill('.bc-input', 'echo bc-$((6*7))-done');
  await page.press('.bc-input', 'Enter');
  for (const id of ids) await waitPane(page, id, 'bc-42-done');

  // Keys typed into one pane go to its session only.
  await page.click(`.bc-box[data-instance="${ids[0]}"]`);
  await typeLine(page, 'echo one-$((1+1))-only');
  await waitPane(page, ids[0], 'one-2-only');
  assert.ok(!(await paneText(page, ids[1])).includes('one-2-only'), 'the other pane got keys typed elsewhere');

  // With "Keys to all", into every session.
  await page.check('.bc-keys');
  await page.click(`.bc-box[data-instance="${ids[1]}"]`);
  await typeLine(page, 'echo both-$((2+2))-keys');
  for (const id of ids) await waitPane(page, id, 'both-4-keys');
});

test('no page raised a script error', () => {
  assert.deepEqual(pageErrors, []);
});
