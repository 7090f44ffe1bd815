import type { z } from 'zod';
import type { InitFlag, Plugin } from '../contracts/plugin.js';
import type { Source, SourceContext } from './source.js';

/** `edge-agent init` for a source plugin: its flags, and the source configs (by id) they ask for. */
export interface SourceInit {
  flags: InitFlag[];
  /** `flags` holds commander's parsed options (camelCase); returns {} when this plugin's flags are absent. */
  configs(flags: Record<string, unknown>, device: { deviceId: string }): Record<string, unknown>;
}

export interface SourcePlugin<S extends z.ZodType<{ type: string }>> extends Plugin<S, SourceContext, Source> {
  init?: SourceInit;
}
