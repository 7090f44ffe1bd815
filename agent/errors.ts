/**
 * Every error the agent raises on purpose carries a stable code, so logs, exit codes and
 * tests can tell them apart without matching message text.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'KEY_EXISTS'
  | 'KEY_INVALID'
  | 'KEY_PERMISSIONS'
  | 'KEY_NOT_FOUND'
  | 'STORE_NEWER_SCHEMA'
  | 'STORE_CORRUPT'
  | 'STORE_MISSING'
  | 'STORE_FULL'
  | 'BATCH_INVALID'
  | 'RECEIPT_INVALID'
  | 'LOCKED'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_INVALID'
  | 'MODEL_TAMPERED'
  | 'REPLAY_INPUT'
  | 'BACKEND_UNREACHABLE'
  | 'USAGE'
  | 'PERMISSION'
  | 'KEY_MISMATCH';

export class AgentError extends Error {
  readonly code: ErrorCode;
  /** 2 for usage and configuration errors, 1 for runtime failures (design.md, CLI conventions). */
  readonly exitCode: 1 | 2;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: 1 | 2 }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.exitCode = options?.exitCode ?? (code.startsWith('CONFIG') || code === 'USAGE' ? 2 : 1);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
