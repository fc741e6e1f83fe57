// The output viewer. Outputs can be hundreds of megabytes, so it never
// loads one whole: it reads DescribeInvocationTaskOutput in slices (64 KiB
// pages, the server allows up to 1 MiB), shows one page at a time with
// navigation, follows the tail while a task runs, and downloads the full
// output by streaming slices into a file.

import * as api from './api.js';
import { h, put, bytes, base64ToBytes, toast } from './dom.js';
import { renderAnsi, AnsiState } from './ansi.js';

export const PAGE = 64 * 1024;

export class OutputViewer {
  constructor(taskId, label) {
    this.taskId = taskId;
    this.label = label;
    this.offset = 0; // start of the shown page
    this.loaded = 0; // end of what the page shows
    this.total = 0;
    this.follow = true;
    this.busy = false;
    this.decoder = new TextDecoder();
    this.state = new AnsiState();
    this.pre = h('pre', { class: 'output', tabindex: '0', 'aria-label': `Output of ${label}`, 'aria-live': 'off' });
    this.info = h('span', { class: 'muted' });
    const btn = (text, fn, label2) => h('button', { type: 'button', class: 'small', onclick: fn, 'aria-label': label2 || text }, text);
    this.nav = h('div', { class: 'output-nav' },
      btn('« First', () => this.show(0)),
      btn('‹ Prev', () => this.show(Math.max(0, this.offset - PAGE))),
      btn('Next ›', () => this.show(this.offset + PAGE)),
      btn('Last »', () => this.show(Math.max(0, Math.floor(Math.max(this.total - 1, 0) / PAGE) * PAGE))),
      btn('Download', () => this.download(), `Download the full output of ${label}`),
      this.info);
    this.el = h('div', { class: 'output-viewer' }, this.nav, this.pre);
  }

  updateInfo() {
    const end = this.loaded;
    put(this.info, this.total
      ? `bytes ${this.offset.toLocaleString()}–${end.toLocaleString()} of ${bytes(this.total)}`
      : 'no output yet',
    this.dropped ? ` · ${bytes(this.dropped)} more were not kept (the server's output limit)` : '');
  }

  async fetchSlice(offset, limit) {
    const r = await api.call('DescribeInvocationTaskOutput', { InvocationTaskId: this.taskId, Offset: offset, Limit: limit });
    this.total = r.TotalSize || 0;
    this.dropped = r.Dropped || 0;
    return { data: base64ToBytes(r.Output), complete: r.Complete };
  }

  /** Shows the page starting at `offset`. */
  async show(offset) {
    if (this.busy) return;
    this.busy = true;
    try {
      const { data } = await this.fetchSlice(offset, PAGE);
      this.offset = offset;
      this.loaded = offset + data.length;
      this.follow = this.loaded >= this.total && offset === Math.floor(Math.max(this.total - 1, 0) / PAGE) * PAGE;
      this.decoder = new TextDecoder();
      this.state = new AnsiState();
      put(this.pre);
      renderAnsi(this.pre, this.decoder.decode(data, { stream: true }), this.state);
      this.updateInfo();
    } catch (e) {
      put(this.pre, `cannot read output: ${e.message}`);
    } finally {
      this.busy = false;
    }
  }

  /** New output exists up to `len` bytes: append it if we show the tail. */
  async grow(len) {
    if (len !== undefined && len <= this.loaded) { this.total = Math.max(this.total, len); this.updateInfo(); return; }
    if (!this.follow || this.busy) return;
    if (this.loaded - this.offset >= PAGE) { this.total = len; this.updateInfo(); return; }
    this.busy = true;
    try {
      const want = PAGE - (this.loaded - this.offset);
      const { data } = await this.fetchSlice(this.loaded, want);
      if (data.length) {
        const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
        renderAnsi(this.pre, this.decoder.decode(data, { stream: true }), this.state);
        this.loaded += data.length;
        if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
      }
      this.updateInfo();
    } catch { /* the next push retries */ } finally {
      this.busy = false;
    }
  }

  /** Streams the whole output, slice by slice, into a downloaded file. */
  async download() {
    const parts = [];
    let off = 0;
    toast('Preparing download…');
    for (;;) {
      const r = await api.call('DescribeInvocationTaskOutput', { InvocationTaskId: this.taskId, Offset: off, Limit: 1 << 20 });
      const b = base64ToBytes(r.Output);
      if (!b.length) break;
      parts.push(b);
      off += b.length;
      if (off >= r.TotalSize) break;
    }
    const url = URL.createObjectURL(new Blob(parts, { type: 'text/plain' }));
    const a = h('a', { href: url, download: `${this.taskId}.log` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
