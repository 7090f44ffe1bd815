import type { LoadedConfig } from '../config/load.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import type { Logger } from '../log.js';
import type { InferenceStage } from '../pipeline/inference-stage.js';
import type { Db } from '../store/database.js';
import type { EventStore } from '../store/event-store.js';
import type { Updater } from '../update/updater.js';

/** What of the running agent the updater reaches, and nothing more (agent.ts passes it). */
export interface UpdateWiring {
  db: Db;
  events: EventStore;
  device: Uint8Array;
  log: Logger;
  hasSources: boolean;
  config(): LoadedConfig;
  /** The agent's config reload (SIGHUP's path, Agent.reloadConfig): live keys apply, the others wait for a restart. */
  reloadConfig(loaded: LoadedConfig): Promise<{ applied: string[]; needsRestart: string[] }>;
  inference(): InferenceStage | undefined;
  committed(): number;
  /** Names the model set the next score stage runs. */
  useModels(dir: string): void;
  restartInference(): Promise<void>;
}

/**
 * "Health returned" after an update (docs/updates.md §6): every binding loaded and scoring, and
 * readings committed since the apply (when there are sources).
 */
export function healthSince(w: UpdateWiring, since: { committed: number }): { ok: boolean; why: string } {
  const stage = w.inference();
  const disabled = Object.entries(stage?.disabled ?? {});
  if (disabled.length > 0) return { ok: false, why: `binding ${disabled[0]![0]} disabled: ${disabled[0]![1].reason}` };
  const bound = Object.keys(w.config().config.inference?.bindings ?? {}).length > 0;
  if (bound && !stage) return { ok: false, why: 'the score stage is not running' };
  if (bound && stage!.stats.scored === 0) return { ok: false, why: 'no reading scored by the new model set yet' };
  if (w.hasSources && w.committed() <= since.committed) return { ok: false, why: 'no reading committed since the update' };
  return { ok: true, why: '' };
}

/** The updater of a run whose config sets update.publisher_key; undefined otherwise (its code then never loads). */
export async function startUpdater(w: UpdateWiring): Promise<Updater | undefined> {
  const cfg = w.config().config.update;
  if (!cfg) return undefined;
  const { Updater } = await import('../update/updater.js');
  const updater = new Updater(
    cfg,
    {
      db: w.db,
      events: w.events,
      device: w.device,
      config: w.config,
      runningModelsDir: () => w.inference()?.modelsDir ?? '',
      swapModels: async (dir) => {
        w.useModels(dir);
        await w.restartInference();
      },
      // The same path as SIGHUP (issue 16 item 2): what changes live applies, the rest is reported as needing a restart.
      reloadConfig: async (loaded) => {
        const r = await w.reloadConfig(loaded);
        return { live: r.applied, restart: r.needsRestart };
      },
      healthSince: (since) => healthSince(w, since),
      progress: () => ({ committed: w.committed(), scored: w.inference()?.stats.scored ?? 0 }),
    },
    publicKeyFromDeviceId(cfg.publisher_key),
    w.log.child({ component: 'update' }),
  );
  updater.resume();
  return updater;
}
