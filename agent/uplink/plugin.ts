import type { z } from 'zod';
import type { Plugin } from '../contracts/plugin.js';
import type { Logger } from '../log.js';
import type { Uplink } from './uplink.js';

export interface UplinkContext {
  deviceId: string;
  /** Parsed uplink.receiver_key, when set. */
  receiverKey?: Uint8Array;
  resolvePath(p: string): string;
  log: Logger;
}

export interface UplinkPlugin<S extends z.ZodType<{ type: string }>> extends Plugin<S, UplinkContext, Uplink> {
  /** URL schemes of `--uplink-url` that choose this uplink in `edge-agent init` (e.g. http, https). */
  urlSchemes: readonly string[];
}
