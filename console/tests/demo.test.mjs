// `drover demo` as a newcomer meets it: the printed console sign-in works
// and the printed `drover run` commands run exactly as printed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = process.env.DROVER_BIN || join(here, '..', '..', 'target', 'debug', 'drover');

function post(url, ca, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(new URL(path, url), {
      method: 'POST', ca,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers },
    }, res => {
      let text = '';
      res.on('data', d => { text += d; });
      res.on('end', () => resolve({ headers: res.headers, body: JSON.parse(text).Response }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

test('drover demo prints a console sign-in and commands that work as printed', { timeout: 180_000 }, async () => {
  const demo = spawn(BIN, ['demo', '--agents', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout.on('data', d => { out += d; });
  demo.stderr.on('data', d => { out += d; });
  try {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`demo did not get ready:\n${out}`)), 150_000);
      const check = () => { if (out.includes('Press Ctrl-C')) { clearTimeout(t); resolve(); } };
      demo.stdout.on('data', check);
      demo.on('exit', c => reject(new Error(`demo exited ${c}:\n${out}`)));
    });
    const url = /Web console\s*: (https:\/\/\S+?)\/?\s/.exec(out)[1];
    const user = /Sign in as\s*: (\S+)/.exec(out)[1];
    const password = /Password\s*: (\S+)/.exec(out)[1];
    const ca = readFileSync(/CA file\s*: (\S+)/.exec(out)[1]);
    const login = await post(url, ca, '/console/login', { UserName: user, Password: password });
    assert.equal(login.body.Error, undefined, JSON.stringify(login.body));
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    const r = await post(url, ca, '/console/api', {}, {
      Cookie: cookie, 'X-CSRF-Token': login.body.CsrfToken, 'X-TC-Action': 'DescribeRegisterInstances',
    });
    assert.equal(r.body.TotalCount, 2, JSON.stringify(r.body));
    // Every printed `drover run` line, pasted into a shell as is.
    const lines = out.split('\n').map(l => l.trim()).filter(l => l.startsWith('/') && l.includes(' run --profile '));
    assert.equal(lines.length, 2, out);
    for (const line of lines) {
      const res = spawnSync('bash', ['-c', line], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(res.status, 0, `${line}\n${res.stdout}\n${res.stderr}`);
      assert.match(res.stdout, /SUCCESS/);
    }
  } finally {
    demo.kill('SIGINT');
    await new Promise(r => (demo.exitCode === null ? demo.once('exit', r) : r()));
  }
});
