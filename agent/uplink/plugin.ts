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
  /**
   * A signed update bundle (docs/updates.md) that came with a receiver's answer, as base64 text
   * exactly as received: the uplink only routes it, the run verifies it.
   */
  onUpdate?: (base64: string) => void;
  /** Receives the `upload` field of an accepted answer: upload requests signed by the receiver (docs/wire-format.md §12.15). */
  onUpload?: (base64: string[]) => void;
}

export interface UplinkPlugin<S extends z.ZodType<{ type: string }>> extends Plugin<S, UplinkContext, Uplink> {
  /** URL schemes of `--uplink-url` that choose this uplink in `edge-agent init` (e.g. http, https). */
  urlSchemes: readonly string[];
}
