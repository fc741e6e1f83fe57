// Renders program output with ANSI SGR colours as DOM nodes: text nodes in
// spans with classes (16 colours) or CSSOM colours (256 / true colour),
// never markup. Other escape sequences (cursor movement, titles) are dropped.

const ESC = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78]/g;

function xterm256(n) {
  const base = ['#000000', '#cd3131', '#0dbc79', '#e5e510', '#2472c8', '#bc3fbc', '#11a8cd', '#e5e5e5',
    '#666666', '#f14c4c', '#23d18b', '#f5f543', '#3b8eea', '#d670d6', '#29b8db', '#ffffff'];
  if (n < 16) return base[n];
  if (n < 232) {
    n -= 16;
    const c = v => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

export class AnsiState {
  constructor() { this.reset(); }
  reset() { this.fg = null; this.bg = null; this.bold = false; this.dim = false; this.italic = false; this.underline = false; this.inverse = false; }
  apply(params) {
    const p = params === '' ? [0] : params.split(';').map(x => parseInt(x || '0', 10));
    for (let i = 0; i < p.length; i++) {
      const n = p[i];
      if (n === 0) this.reset();
      else if (n === 1) this.bold = true;
      else if (n === 2) this.dim = true;
      else if (n === 3) this.italic = true;
      else if (n === 4) this.underline = true;
      else if (n === 7) this.inverse = true;
      else if (n === 22) { this.bold = false; this.dim = false; }
      else if (n === 23) this.italic = false;
      else if (n === 24) this.underline = false;
      else if (n === 27) this.inverse = false;
      else if (n >= 30 && n <= 37) this.fg = n - 30;
      else if (n >= 90 && n <= 97) this.fg = n - 90 + 8;
      else if (n === 39) this.fg = null;
      else if (n >= 40 && n <= 47) this.bg = n - 40;
      else if (n >= 100 && n <= 107) this.bg = n - 100 + 8;
      else if (n === 49) this.bg = null;
      else if ((n === 38 || n === 48) && p[i + 1] === 5) {
        const c = xterm256(p[i + 2] || 0);
        if (n === 38) this.fg = c; else this.bg = c;
        i += 2;
      } else if ((n === 38 || n === 48) && p[i + 1] === 2) {
        const c = `rgb(${p[i + 2] || 0},${p[i + 3] || 0},${p[i + 4] || 0})`;
        if (n === 38) this.fg = c; else this.bg = c;
        i += 4;
      }
    }
  }
  plain() { return this.fg === null && this.bg === null && !this.bold && !this.dim && !this.italic && !this.underline && !this.inverse; }
  span(text) {
    const s = document.createElement('span');
    s.textContent = text;
    const cls = [];
    let [fg, bg] = this.inverse ? [this.bg, this.fg] : [this.fg, this.bg];
    if (this.inverse) cls.push('a-inv');
    if (typeof fg === 'number') cls.push(`a-fg${fg}`); else if (fg) s.style.color = fg;
    if (typeof bg === 'number') cls.push(`a-bg${bg}`); else if (bg) s.style.backgroundColor = bg;
    if (this.bold) cls.push('a-b');
    if (this.dim) cls.push('a-dim');
    if (this.italic) cls.push('a-i');
    if (this.underline) cls.push('a-u');
    s.className = cls.join(' ');
    return s;
  }
}

/** Appends `text` (which may hold escape sequences) to `el` as safe nodes. */
export function renderAnsi(el, text, state = new AnsiState()) {
  const frag = document.createDocumentFragment();
  let last = 0;
  const emit = t => {
    if (!t) return;
    t = t.replace(/\r(?!\n)/g, '\n');
    frag.append(state.plain() ? document.createTextNode(t) : state.span(t));
  };
  ESC.lastIndex = 0;
  let m;
  while ((m = ESC.exec(text)) !== null) {
    emit(text.slice(last, m.index));
    if (m[2] === 'm') state.apply(m[1]);
    last = ESC.lastIndex;
  }
  emit(text.slice(last));
  el.append(frag);
  return state;
}

/** Text without escape sequences (for diffs and grouping views). */
export function stripAnsi(text) {
  return text.replace(ESC, '');
}
