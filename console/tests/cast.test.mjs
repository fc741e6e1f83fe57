// Unit tests of the replay logic (console/src/term/cast.js): asciicast v2
// parsing, and the player under a fake clock: real-speed and faster
// playback, seeking backwards and forwards, resizes where they happened.
// No browser: run with `node --test console/tests/cast.test.mjs`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCast, parseSize, clock, Player } from '../src/term/cast.js';

const CAST = [
  JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1700000000, env: { TERM: 'xterm-256color' } }),
  JSON.stringify([0.5, 'o', 'hello ']),
  JSON.stringify([1.0, 'i', 'ls\r']),
  JSON.stringify([1.0, 'o', 'wörld 漢字\r\n']),
  JSON.stringify([2.0, 'r', '100x30']),
  JSON.stringify([3.0, 'o', '\u001b[31mred\u001b[0m']),
  JSON.stringify([3.5, 'x', 'unknown codes are skipped']),
  '',
].join('\n');

/** A screen that records what the player did to it. */
function fakeScreen() {
  const s = { text: '', size: null, resets: 0, writes: 0, sizes: [] };
  s.reset = () => { s.text = ''; s.resets++; };
  s.write = t => { s.text += t; s.writes++; };
  s.resize = (c, r) => { s.size = `${c}x${r}`; s.sizes.push(s.size); };
  return s;
}

/** A clock the test moves by hand. */
function fakeClock() {
  const c = { t: 0, timers: new Map(), seq: 0 };
  c.now = () => c.t;
  c.setTimeout = (fn, ms) => { const id = ++c.seq; c.timers.set(id, { at: c.t + ms, fn }); return id; };
  c.clearTimeout = id => c.timers.delete(id);
  // Runs every timer due up to `ms` from now, in order.
  c.advance = ms => {
    const end = c.t + ms;
    for (;;) {
      let best = null;
      for (const [id, x] of c.timers) if (x.at <= end && (!best || x.at < best[1].at)) best = [id, x];
      if (!best) break;
      c.timers.delete(best[0]);
      c.t = best[1].at;
      best[1].fn();
    }
    c.t = end;
  };
  return c;
}

test('parses the header and events, sorted, skipping unknown codes', () => {
  const c = parseCast(CAST);
  assert.equal(c.header.width, 80);
  assert.equal(c.header.height, 24);
  assert.deepEqual(c.events.map(e => e.code), ['o', 'i', 'o', 'r', 'o']);
  assert.equal(c.duration, 3.0);
  assert.equal(c.events[2].data, 'wörld 漢字\r\n');
});

test('refuses what is not asciicast v2, naming the line', () => {
  assert.throws(() => parseCast('not json'), /first line/);
  assert.throws(() => parseCast('{"version":1}'), /v2/);
  assert.throws(() => parseCast('{"version":2}\n[1, "o"'), /line 2 is not JSON/);
  assert.throws(() => parseCast('{"version":2}\n{"a":1}'), /line 2 is not a \[time, code, data\]/);
});

test('sizes and clock', () => {
  assert.deepEqual(parseSize('100x30'), { cols: 100, rows: 30 });
  assert.equal(parseSize('0x30'), null);
  assert.equal(parseSize('wide'), null);
  assert.equal(clock(65.9), '1:05');
  assert.equal(clock(3725), '1:02:05');
});

test('plays at real speed: nothing early, everything in time, input never drawn', () => {
  const s = fakeScreen();
  const c = fakeClock();
  let playing = null;
  const p = new Player(parseCast(CAST), s, { clock: c, onstate: v => { playing = v; } });
  assert.equal(s.size, '80x24');
  p.play();
  assert.equal(playing, true);
  c.advance(400);
  assert.equal(s.text, '');
  c.advance(200); // 0.6 s
  assert.equal(s.text, 'hello ');
  c.advance(500); // 1.1 s
  assert.equal(s.text, 'hello wörld 漢字\r\n');
  assert.ok(!s.text.includes('ls'));
  c.advance(1000); // 2.1 s
  assert.equal(s.size, '100x30');
  c.advance(1000); // 3.1 s
  assert.ok(s.text.endsWith('\u001b[31mred\u001b[0m'));
  assert.equal(playing, false);
  assert.equal(p.pos, 3.0);
});

test('8x plays the 3 s recording in under half a second', () => {
  const s = fakeScreen();
  const c = fakeClock();
  const p = new Player(parseCast(CAST), s, { clock: c });
  p.setSpeed(8);
  p.play();
  c.advance(300);
  assert.equal(p.playing, true);
  c.advance(100); // 0.4 s wall = 3.2 s cast
  assert.equal(p.playing, false);
  assert.ok(s.text.endsWith('red\u001b[0m'));
});

test('changing speed mid-play keeps the position', () => {
  const s = fakeScreen();
  const c = fakeClock();
  const p = new Player(parseCast(CAST), s, { clock: c });
  p.play();
  c.advance(800); // 0.8 s at 1x
  p.setSpeed(2);
  assert.ok(Math.abs(p.pos - 0.8) < 1e-9, String(p.pos));
  c.advance(150); // + 0.3 s cast
  assert.equal(s.text, 'hello wörld 漢字\r\n');
  assert.ok(Math.abs(p.pos - 1.1) < 0.26);
});

test('seeking back resets and redraws in one batch; seeking forward only adds', () => {
  const s = fakeScreen();
  const c = fakeClock();
  const p = new Player(parseCast(CAST), s, { clock: c });
  p.seek(3);
  assert.equal(s.text, 'hello wörld 漢字\r\n\u001b[31mred\u001b[0m');
  assert.deepEqual(s.sizes, ['80x24', '100x30']);
  const resets = s.resets;
  const writes = s.writes;
  p.seek(1.5);
  assert.equal(s.resets, resets + 1);
  assert.equal(s.writes, writes + 1, 'one write for everything up to the seek point');
  assert.equal(s.text, 'hello wörld 漢字\r\n');
  assert.equal(s.size, '80x24', 'the later resize is undone');
  p.seek(2.5);
  assert.equal(s.resets, resets + 1);
  assert.equal(s.size, '100x30');
  // Playing from a seek point goes on from there.
  p.play();
  c.advance(600);
  assert.ok(s.text.endsWith('red\u001b[0m'));
  // Play at the end starts over.
  p.play();
  assert.equal(p.playing, true);
  assert.equal(p.pos, 0);
  p.pause();
  assert.equal(p.playing, false);
});
