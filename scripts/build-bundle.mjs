#!/usr/bin/env node
/**
 * `npm run build`, second step (after tsc): bundles tsc's output, dist/agent/cli/main.js, into one
 * ESM file, dist/bundle/edge-agent.mjs, which the package's bin, the systemd unit and the arm64
 * image run. Why: a cold start is mostly module loading; unbundled, `edge-agent run` resolves, reads
 * and links ~400 ES modules (ours, zod, yaml, mqtt.js, ...) before the first reading is acknowledged.
 *
 * Kept outside the bundle, loaded from node_modules as before:
 *  - packages with native addons (.node files found at run time through node-gyp-build/bindings);
 *  - pino-pretty, which log.ts loads with createRequire only when stderr is a terminal;
 *  - optional peers that are not installed (pg-native).
 * Paths the agent finds at run time (models/, agent/health/static/) are looked up from the package
 * root (agent/util/package-root.ts), so they resolve the same from dist/agent and dist/bundle.
 */
import { build } from 'esbuild';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUNDLE = join(ROOT, 'dist/bundle/edge-agent.mjs');

const EXTERNAL = ['better-sqlite3', 'onnxruntime-node', 'serialport', '@serialport/*', 'pino-pretty', 'pg-native'];

// CommonJS dependencies bundled into ESM still call require() (node: built-ins, the externals above)
// and may read __filename/__dirname: give them the real ones, relative to the bundle.
const BANNER = [
  "import { createRequire as __edgeAgentCreateRequire } from 'node:module';",
  "import { fileURLToPath as __edgeAgentFileURLToPath } from 'node:url';",
  'const require = __edgeAgentCreateRequire(import.meta.url);',
  'const __filename = __edgeAgentFileURLToPath(import.meta.url);',
  "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
].join('\n');

/**
 * One file, no code splitting. Measured (cold-start.ts --against, 6 interleaved starts, load 0.5):
 * esbuild's splitting (128 chunks, the lazily imported commands apart) started 657 ms median
 * against 714, CPU 630 against 680 ms, but broke `await import('mqtt')` in util/side-client.ts
 * (its namespace had no connect()), so the alert publisher failed at start. `outDir` other than
 * dist/bundle: a variant to measure against the bin.
 */
export async function buildBundle({ outDir = dirname(BUNDLE) } = {}) {
  const entry = join(outDir, 'edge-agent.mjs');
  const result = await build({
    entryPoints: { 'edge-agent': join(ROOT, 'dist/agent/cli/main.js') },
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: BANNER },
    // Smaller source to parse at every start; names kept so stack traces and class names in logs read as before.
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    // The map names node_modules' files instead of embedding them (7 MB -> the size below): the
    // package ships node_modules beside it, so --enable-source-maps still finds them.
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  // The package's bin: run as ./edge-agent.mjs from the repository too (npm sets the mode on install,
  // a checkout does not), so the entry's shebang must lead the file and the file be executable.
  const head = readFileSync(entry, 'utf8').slice(0, 64);
  if (!head.startsWith('#!/usr/bin/env node\n')) throw new Error(`${relative(ROOT, entry)} does not start with '#!/usr/bin/env node' (agent/cli/main.ts must keep its shebang on line 1): it starts ${JSON.stringify(head)}`);
  chmodSync(entry, 0o755);
  const inputs = Object.keys(result.metafile.inputs).length;
  const outputs = Object.entries(result.metafile.outputs).filter(([name]) => name.endsWith('.mjs'));
  const bytes = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
  process.stdout.write(`bundle: ${relative(ROOT, entry)} from ${inputs} modules, ${outputs.length} file${outputs.length === 1 ? '' : 's'}, ${(bytes / 1024).toFixed(0)} KiB\n`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
  const outDir = arg('--outdir');
  await buildBundle({ ...(outDir ? { outDir: join(process.cwd(), outDir) } : {}) }).catch((err) => {
    process.stderr.write(`build-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
