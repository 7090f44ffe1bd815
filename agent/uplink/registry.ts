import { z } from 'zod';
import { httpUplinkPlugin } from './http/plugin.js';
import { mqttUplinkPlugin } from './mqtt/plugin.js';
import type { UplinkContext } from './plugin.js';
import type { Uplink } from './uplink.js';

export type { UplinkContext } from './plugin.js';

/** One line per uplink plugin (its folder's plugin.ts): config schema, init URL schemes, doctor check, code. */
export const UPLINK_PLUGINS = [httpUplinkPlugin, mqttUplinkPlugin] as const;

type Schemas<T extends readonly unknown[]> = { -readonly [K in keyof T]: T[K] extends { schema: infer S } ? S : never };

export const uplinkSchema = z.discriminatedUnion('type', UPLINK_PLUGINS.map((p) => p.schema) as unknown as Schemas<typeof UPLINK_PLUGINS>);
export type UplinkConfig = z.infer<typeof uplinkSchema>;
export type UplinkFactory = (cfg: UplinkConfig, ctx: UplinkContext) => Uplink;

export function uplinkPlugin(type: UplinkConfig['type']): (typeof UPLINK_PLUGINS)[number] {
  return UPLINK_PLUGINS.find((p) => p.type === type)!;
}

/** The uplink plugin `edge-agent init --uplink-url` picks by the URL's scheme. */
export function uplinkPluginForUrl(url: string): (typeof UPLINK_PLUGINS)[number] | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(url)?.[1];
  return UPLINK_PLUGINS.find((p) => scheme !== undefined && p.urlSchemes.includes(scheme));
}

export async function loadUplinkFactory(type: UplinkConfig['type']): Promise<UplinkFactory> {
  return (await uplinkPlugin(type).load()) as UplinkFactory;
}
