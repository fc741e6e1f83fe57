// Bundles the console: src/main.js and everything it imports, including npm
// packages and their CSS (main.js imports style.css; a package's own
// stylesheet, such as xterm.js's, is imported the same way), into app.js and
// app.css, plus index.html and the icon, into the folder named by the first
// argument (build.rs passes $OUT_DIR/console). No inline script or style is
// produced, so the strict CSP holds.
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const out = process.argv[2] || 'dist';
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  outfile: join(out, 'app.js'),
  loader: { '.woff': 'file', '.woff2': 'file', '.svg': 'file' },
  // Served beside the bundle, not bundled.
  external: ['/favicon.svg'],
  logLevel: 'warning',
});
for (const f of ['index.html', 'favicon.svg']) {
  await copyFile(join('src', f), join(out, f));
}
