import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { AgentError } from '../errors.js';

/**
 * Permission problems explained for the operator (design.md, CLI conventions: exit 2): which file
 * or directory, its owner and mode, the user the agent runs as, and the chown/chmod that fixes it.
 * The typical cause is `sudo edge-agent init` leaving root-owned files for an agent run as a user.
 */

export type Access = 'read' | 'write';

function nameOf(file: '/etc/passwd' | '/etc/group', id: number): string {
  try {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.split(':')[2] === String(id));
    return line ? line.split(':')[0]! : String(id);
  } catch {
    return String(id);
  }
}

/** The user this process runs as, e.g. "pi (uid 1000)". */
export function runningUser(): { name: string; uid: number; text: string } {
  const uid = process.getuid?.() ?? -1;
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = nameOf('/etc/passwd', uid);
  }
  return { name, uid, text: `${name} (uid ${uid})` };
}

function owner(path: string): { text: string; mode: string; isDir: boolean } | undefined {
  try {
    const st = statSync(path);
    return { text: `${nameOf('/etc/passwd', st.uid)}:${nameOf('/etc/group', st.gid)}`, mode: (st.mode & 0o777).toString(8).padStart(3, '0'), isDir: st.isDirectory() };
  } catch {
    return undefined;
  }
}

const can = (path: string, mode: number) => {
  try {
    accessSync(path, mode);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
};

/** The first path component this user cannot get through: a directory it cannot enter, or the file itself. */
function blocker(path: string, want: Access): { path: string; need: string } | undefined {
  const full = resolve(path);
  const dirs: string[] = [];
  for (let d = dirname(full); ; d = dirname(d)) {
    dirs.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of dirs) if (!can(d, constants.X_OK)) return { path: d, need: 'enter' };
  const target = can(full, constants.F_OK) ? full : dirname(full);
  const mode = want === 'read' ? constants.R_OK : constants.W_OK;
  if (!can(target, mode)) return { path: target, need: target === full ? want : 'write in' };
  return undefined;
}

/** An AgentError (exit 2) naming what blocks `want` on `path`; `dataDir` is what to chown. */
export function permissionError(path: string, want: Access, dataDir?: string, cause?: unknown): AgentError {
  const user = runningUser();
  const b = blocker(path, want) ?? { path: resolve(path), need: want };
  const o = owner(b.path);
  const what = o?.isDir ? 'directory' : 'file';
  const who = o ? `it is owned by ${o.text} with mode ${o.mode}` : 'its owner and mode cannot be read';
  // The data dir when it exists (everything in it belongs to the agent's user), else what blocks.
  const chownTarget = dataDir !== undefined && existsSync(dataDir) ? dataDir : b.path;
  const chmod = o?.isDir ? `chmod u+rwx ${b.path}` : /\.key$|\.key\./.test(b.path) ? `chmod 600 ${b.path}` : `chmod u+rw ${b.path}`;
  return new AgentError(
    'PERMISSION',
    `cannot ${b.need} ${what} ${b.path}${b.path === resolve(path) ? '' : ` (on the way to ${resolve(path)})`}: permission denied; ${who}, and edge-agent runs as ${user.text}. ` +
      `Fix: sudo chown -R ${user.name}: ${chownTarget} && ${chmod} (files made by \`sudo edge-agent init\` belong to root), or run edge-agent as the owner`,
    { exitCode: 2, ...(cause === undefined ? {} : { cause }) },
  );
}

export const isPermissionError = (err: unknown): err is NodeJS.ErrnoException =>
  typeof err === 'object' && err !== null && ['EACCES', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '');

/** existsSync that tells "not there" from "not allowed to look". */
export function existsOrPermission(path: string, dataDir?: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    if (isPermissionError(err)) throw permissionError(path, 'read', dataDir, err);
    return false;
  }
}
