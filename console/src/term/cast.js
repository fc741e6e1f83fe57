// asciicast v2 (the recordings the server keeps of every session): parsing,
// and a player that drives any screen with reset/write/resize. Seeking
// resets the screen and writes everything up to the chosen time in one
// batch (fast: no timers), then playing goes on from there at 1x, 2x or
// 8x. No DOM here, so the node tests drive it with a fake clock.

/**
 * Parses asciicast v2 text: a JSON header line, then one
 * `[seconds, code, data]` JSON array per line. Returns {header, events,
 * duration}; throws an Error naming the line when the file is not one.
 * Events are sorted by time (stable), codes other than o/i/r/m are skipped.
 */
export function parseCast(text) {
  const lines = String(text).split('\n');
  let header;
  try { header = JSON.parse(lines[0]); } catch { throw new Error('not an asciicast file: the first line is not JSON'); }
  if (!header || header.version !== 2) throw new Error(`not an asciicast v2 file (version ${header && header.version})`);
  const width = Number(header.width) || 80;
  const height = Number(header.height) || 24;
  const events = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let e;
    try { e = JSON.parse(line); } catch { throw new Error(`line ${i + 1} is not JSON`); }
    if (!Array.isArray(e) || e.length < 3 || typeof e[0] !== 'number' || !Number.isFinite(e[0]) || typeof e[2] !== 'string') {
      throw new Error(`line ${i + 1} is not a [time, code, data] event`);
    }
    if (!['o', 'i', 'r', 'm'].includes(e[1])) continue;
    events.push({ t: Math.max(0, e[0]), code: e[1], data: e[2] });
  }
  events.sort((a, b) => a.t - b.t);
  const duration = events.length ? events[events.length - 1].t : 0;
  return { header: { ...header, width, height }, events, duration };
}

/** "COLSxROWS" of a resize event, or null. */
export function parseSize(data) {
  const m = /^(\d+)x(\d+)$/.exec(String(data).trim());
  if (!m) return null;
  const cols = Number(m[1]);
  const rows = Number(m[2]);
  return cols > 0 && rows > 0 && cols <= 1000 && rows <= 1000 ? { cols, rows } : null;
}

/** m:ss (or h:mm:ss) of a time in seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const realClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: id => clearTimeout(id),
};

/**
 * Plays a parsed cast into `screen` ({reset(), write(text), resize(cols,
 * rows)}). `onprogress(seconds)` follows the position; `onstate(playing)`
 * follows play/pause/end.
 */
export class Player {
  constructor(cast, screen, { clock: c = realClock, onprogress = () => {}, onstate = () => {} } = {}) {
    this.cast = cast;
    this.screen = screen;
    this.clock = c;
    this.onprogress = onprogress;
    this.onstate = onstate;
    this.speed = 1;
    this.playing = false;
    this.timer = null;
    this.next = 0; // index of the first event not yet shown
    this.pos = 0; // seconds shown so far
    this.baseWall = 0; // wall time (ms) at which pos was baseTime
    this.baseTime = 0;
    this.reset();
  }

  get duration() { return this.cast.duration; }

  reset() {
    this.screen.reset();
    this.screen.resize(this.cast.header.width, this.cast.header.height);
    this.next = 0;
    this.pos = 0;
  }

  /**
   * Shows every event up to time `t` (seconds), batching consecutive
   * output into one write; resizes are applied where they happened.
   */
  advance(t) {
    const ev = this.cast.events;
    let chunk = '';
    while (this.next < ev.length && ev[this.next].t <= t) {
      const e = ev[this.next++];
      if (e.code === 'o') {
        chunk += e.data;
      } else if (e.code === 'r') {
        const size = parseSize(e.data);
        if (size) {
          if (chunk) { this.screen.write(chunk); chunk = ''; }
          this.screen.resize(size.cols, size.rows);
        }
      }
    }
    if (chunk) this.screen.write(chunk);
    this.pos = Math.min(t, this.duration);
    this.onprogress(this.pos);
  }

  /** Jumps to `t` seconds: a reset and one batch of everything before it. */
  seek(t) {
    const target = Math.max(0, Math.min(Number(t) || 0, this.duration));
    if (target < this.pos || target === 0) this.reset();
    this.advance(target);
    if (this.playing) this.rebase();
  }

  setSpeed(x) {
    const v = Number(x);
    if (!(v > 0)) return;
    if (this.playing) this.advance(this.now());
    this.speed = v;
    if (this.playing) this.rebase();
  }

  play() {
    if (this.playing) return;
    if (this.pos >= this.duration) this.seek(0);
    this.playing = true;
    this.onstate(true);
    this.rebase();
  }

  pause() {
    if (!this.playing) return;
    this.advance(this.now());
    this.stop();
  }

  stop() {
    this.playing = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.onstate(false);
  }

  /** The cast time the wall clock says we are at. */
  now() {
    return this.baseTime + ((this.clock.now() - this.baseWall) * this.speed) / 1000;
  }

  rebase() {
    this.baseWall = this.clock.now();
    this.baseTime = this.pos;
    this.schedule();
  }

  schedule() {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (!this.playing) return;
    const ev = this.cast.events;
    if (this.next >= ev.length) {
      this.advance(this.duration);
      this.stop();
      return;
    }
    // Wake at the next event, but at least every 250 ms so the slider moves.
    const wait = Math.max(0, Math.min(((ev[this.next].t - this.now()) * 1000) / this.speed, 250));
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.advance(Math.min(this.now(), this.duration));
      this.schedule();
    }, wait);
  }

  dispose() {
    this.playing = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
