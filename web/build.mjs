// Builds the meeting page into dist/: app.js (src/main.js bundled with
// strophe.js by esbuild), e2ee-worker.js (src/e2ee-worker.js, the
// end-to-end encryption worker e2ee.js starts from '/e2ee-worker.js', a
// classic worker script), index.html and style.css copied from src/.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');

await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(here, 'src/main.js')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  outfile: join(dist, 'app.js'),
  logLevel: 'warning',
});
await build({
  entryPoints: [join(here, 'src/e2ee-worker.js')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  outfile: join(dist, 'e2ee-worker.js'),
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) {
  await copyFile(join(here, 'src', file), join(dist, file));
}
console.log(`built ${dist}`);
