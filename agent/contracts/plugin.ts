import type { z } from 'zod';
import type { CheckResult } from './doctor-check.js';

/**
 * What a plugin folder (agent/sources/NAME/, agent/uplink/NAME/) declares in its `plugin.ts`, and
 * the registry (one line per plugin) hands to the config schema, `edge-agent init`,
 * `edge-agent doctor` and the run. docs/architecture.md, "Adding a source or an uplink".
 */

/** One `edge-agent init` flag of a plugin (commander syntax). */
export interface InitFlag {
  flags: string;
  description: string;
  /** Parses and checks the value (throw AgentError('USAGE', ...) naming the flag); repeatable flags collect. */
  parse?: (value: string, previous: unknown) => unknown;
}

/** Where a doctor check runs and how it reaches files. */
export interface DoctorEnv {
  resolvePath(p: string): string;
  timeoutMs: number;
}

export interface PluginDoctor<C> {
  /** The check's name in the doctor's report (e.g. "broker", "serial"). */
  check: string;
  /** Network checks run concurrently, after the local ones. */
  network: boolean;
  /** The `skip` line when no instance of this plugin is configured. */
  none: string;
  run(id: string, cfg: C, env: DoctorEnv): CheckResult | Promise<CheckResult>;
}

/** A plugin of kind `Instance` (a Source or an Uplink) made from config `S` with context `Ctx`. */
export interface Plugin<S extends z.ZodType<{ type: string }>, Ctx, Instance> {
  /** The config `type`. */
  readonly type: z.infer<S>['type'];
  /** The strict zod schema of one instance's config (unknown keys are errors). */
  readonly schema: S;
  /**
   * Loads the plugin's code and returns its factory. Loaded only when an instance is configured,
   * so `status`, `verify` and `keys` never load MQTT, CoAP or serial libraries.
   */
  load(): Promise<(cfg: z.infer<S>, ctx: Ctx) => Instance>;
  doctor?: PluginDoctor<z.infer<S>>;
}
