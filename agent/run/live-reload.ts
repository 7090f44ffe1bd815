import type { AgentConfig } from '../config/schema.js';

/** Top-level config sections the running agent applies without a restart (the score stage is rebuilt). */
const LIVE_SECTIONS: ReadonlySet<string> = new Set(['inference']);

/**
 * Which top-level sections differ between two configs, split into those applied live and those
 * that need a restart. The SIGHUP reload (issue 16 item 2) may widen LIVE_SECTIONS; a config
 * update reports the rest as "needs a restart" in its update.applied event.
 */
export function liveReload(before: AgentConfig, after: AgentConfig): { live: string[]; restart: string[] } {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...keys].filter((k) => JSON.stringify(before[k as keyof AgentConfig]) !== JSON.stringify(after[k as keyof AgentConfig])).sort();
  return { live: changed.filter((k) => LIVE_SECTIONS.has(k)), restart: changed.filter((k) => !LIVE_SECTIONS.has(k)) };
}
