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

export async function buildBundle() {
  const result = await build({
    entryPoints: [join(ROOT, 'dist/agent/cli/main.js')],
    outfile: BUNDLE,
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
  const head = readFileSync(BUNDLE, 'utf8').slice(0, 64);
  if (!head.startsWith('#!/usr/bin/env node\n')) throw new Error(`${relative(ROOT, BUNDLE)} does not start with '#!/usr/bin/env node' (agent/cli/main.ts must keep its shebang on line 1): it starts ${JSON.stringify(head)}`);
  chmodSync(BUNDLE, 0o755);
  const inputs = Object.keys(result.metafile.inputs).length;
  const bytes = result.metafile.outputs[relative(process.cwd(), BUNDLE)]?.bytes;
  process.stdout.write(`bundle: ${relative(ROOT, BUNDLE)} from ${inputs} modules${bytes ? `, ${(bytes / 1024).toFixed(0)} KiB` : ''}\n`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildBundle().catch((err) => {
    process.stderr.write(`build-bundle: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
