import { readFileSync, statSync } from 'node:fs';
import { AgentError } from '../errors.js';
import type { Logger } from 'pino';

/**
 * Reads a password file named by config key `key` (trailing newline trimmed). A file others can
 * read is used, with a warning that names the fix: refusing it would stop a running fleet over a
 * mode bit, while key files (which prove identity) are refused outright.
 */
export function readSecretFile(path: string, key: string, log: Logger): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${key}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) log.warn({ file: path, mode: mode.toString(8) }, `${key}: ${path} is readable by group or others; fix: chmod 600 ${path}`);
  return text.trim();
}
