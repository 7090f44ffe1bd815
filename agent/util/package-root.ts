import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'edge-agent';

/**
 * The package's root directory (the one holding its package.json), found by walking up from the
 * running module: tsc's output (dist/agent/...), the bundle (dist/bundle/edge-agent.mjs) and the
 * sources under vitest sit at different depths, so a fixed '../../..' holds for one of them only.
 * Files the agent ships beside its code (models/, agent/health/static/) resolve from here.
 */
export function packageRoot(from: string = import.meta.url): string {
  const start = dirname(from.startsWith('file:') ? fileURLToPath(from) : from);
  for (let dir = start; ; dir = dirname(dir)) {
    if (isOurPackage(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no ${PACKAGE_NAME} package.json in ${start} or any directory above it (is the package installed whole?)`);
  }
}

function isOurPackage(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false; // unreadable or not JSON: not ours, keep walking
  }
}
