import { z } from 'zod';
import { coapObserveSourcePlugin } from './coap-observe/plugin.js';
import { coapServerSourcePlugin } from './coap-server/plugin.js';
import { mqttSourcePlugin } from './mqtt/plugin.js';
import { serialSourcePlugin } from './serial/plugin.js';
import { simulatorSourcePlugin } from './simulator/plugin.js';
import type { Source, SourceContext } from './source.js';

/** One line per source plugin (its folder's plugin.ts): config schema, init flags, doctor check, code. */
export const SOURCE_PLUGINS = [mqttSourcePlugin, serialSourcePlugin, coapServerSourcePlugin, coapObserveSourcePlugin, simulatorSourcePlugin] as const;

type Schemas<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] extends { schema: infer S } ? S : never };

/** Any source's config, told apart by `type`. */
export const sourceSchema = z.discriminatedUnion('type', SOURCE_PLUGINS.map((p) => p.schema) as unknown as Schemas<typeof SOURCE_PLUGINS>);
export type SourceConfig = z.infer<typeof sourceSchema>;
export type SourceFactory = (cfg: SourceConfig, ctx: SourceContext) => Source;

export function sourcePlugin(type: SourceConfig['type']): (typeof SOURCE_PLUGINS)[number] {
  return SOURCE_PLUGINS.find((p) => p.type === type)!;
}

/** Loads the code of the source types in use (and only those), before the run is assembled. */
export async function loadSourceFactories(types: Iterable<SourceConfig['type']>): Promise<Map<string, SourceFactory>> {
  const out = new Map<string, SourceFactory>();
  for (const type of new Set(types)) out.set(type, (await sourcePlugin(type).load()) as SourceFactory);
  return out;
}
