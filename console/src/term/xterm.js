// One place that makes an xterm.js terminal for the console: the DOM
// renderer under the CSP bridge (cspstyle.js), the fit addon sizing it to
// its box, Unicode 11 widths (wide CJK characters and emoji take two
// cells, as in the shell's own wcwidth), the console's dark palette, and
// copy/paste keys that do not steal Ctrl+C from the shell.

import '@xterm/xterm/css/xterm.css';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { bridgeStyles } from './cspstyle.js';

const THEME = {
  background: '#0f1522', foreground: '#dce3ee', cursor: '#ffb000', cursorAccent: '#0f1522',
  selectionBackground: '#3b5a8c',
  black: '#4d4d4d', red: '#f14c4c', green: '#23d18b', yellow: '#e5e510',
  blue: '#3b8eea', magenta: '#d670d6', cyan: '#29b8db', white: '#e5e5e5',
  brightBlack: '#808080', brightRed: '#ff6b6b', brightGreen: '#5af78e', brightYellow: '#f4f99d',
  brightBlue: '#6cb6ff', brightMagenta: '#ff92df', brightCyan: '#9aedfe', brightWhite: '#ffffff',
};

/**
 * Opens a terminal in `box` (an empty element the page sized). Returns
 * {term, fit, dispose}. With `readOnly` (a replay) keystrokes go nowhere and
 * no cursor blinks.
 */
export function openTerminal(box, { readOnly = false, label = 'Terminal' } = {}) {
  const unbridge = bridgeStyles(box);
  const term = new Terminal({
    allowProposedApi: true, // the Unicode 11 width table
    cursorBlink: !readOnly,
    disableStdin: readOnly,
    convertEol: false,
    fontFamily: 'ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Noto Sans Mono", monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: THEME,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.loadAddon(new Unicode11Addon());
  term.unicode.activeVersion = '11';
  // Ctrl+C and Ctrl+V belong to the shell (interrupt, literal next);
  // Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes through the
  // browser's own paste event, which xterm.js turns into input (bracketed
  // when the program asked for it).
  term.attachCustomKeyEventHandler(ev => {
    if (ev.type !== 'keydown' || !ev.ctrlKey || !ev.shiftKey) return true;
    const k = ev.key.toLowerCase();
    if (k === 'c') {
      const sel = term.getSelection();
      if (sel) navigator.clipboard.writeText(sel).catch(() => {});
      ev.preventDefault();
      return false;
    }
    if (k === 'v') return false;
    return true;
  });
  term.open(box);
  // xterm.js labels its hidden input; say which terminal it is.
  const input = box.querySelector('textarea');
  if (input) input.setAttribute('aria-label', label);
  return {
    term,
    fit,
    dispose() {
      term.dispose();
      unbridge();
    },
  };
}

/** The screen as text, one line per row (what the DOM renderer shows). */
export function screenText(term) {
  const b = term.buffer.active;
  const out = [];
  for (let y = 0; y < term.rows; y++) {
    const line = b.getLine(b.viewportY + y);
    out.push(line ? line.translateToString(true) : '');
  }
  return out.join('\n');
}
