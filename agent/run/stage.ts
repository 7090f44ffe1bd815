import type { Logger } from '../log.js';

/**
 * The stages of a run, in the direction of data (design.md, "Data flow"; docs/architecture.md).
 * A new stage is a new name here, at its place, and a new entry in `Agent`'s list
 * (agent/run/agent.ts); test/unit/import-direction.test.ts reads this order.
 */
export const STAGE_ORDER = ['sources', 'ingest', 'guard', 'commit', 'score', 'batch', 'uplink'] as const;
export type StageName = (typeof STAGE_ORDER)[number];

/** One stage as the run sees it: a name at its place in the order, and how to start and stop it. */
export interface RunStage {
  readonly name: StageName;
  /** Called last stage first: whatever a stage hands on has somewhere to go before it starts. */
  start(): Promise<void> | void;
  /** Called first stage first: inputs stop, then each stage drains into the next. `drainMs` bounds the uplink's last delivery. */
  stop(opts: { drainMs: number }): Promise<void> | void;
}

/** Checks that the list names each stage once, in STAGE_ORDER: a misplaced entry is a programming error caught at start. */
export function checkStageOrder(stages: readonly RunStage[]): void {
  const names = stages.map((s) => s.name).join(' → ');
  if (names !== STAGE_ORDER.join(' → ')) throw new Error(`run stages are [${names}]; expected [${STAGE_ORDER.join(' → ')}] (agent/run/stage.ts)`);
}

export async function startStages(stages: readonly RunStage[]): Promise<void> {
  for (const stage of [...stages].reverse()) await stage.start();
}

/** Stops every stage even when one fails to stop: the store must still be closed cleanly. */
export async function stopStages(stages: readonly RunStage[], drainMs: number, log: Logger): Promise<void> {
  for (const stage of stages) {
    try {
      await stage.stop({ drainMs });
    } catch (err) {
      log.error({ err, stage: stage.name }, 'stopping a stage failed; stopping the others');
    }
  }
}
