/**
 * Where each file of agent/ sits in the run (docs/architecture.md, "Import rules"), and which imports that allows.
 * Paths are relative to agent/. The stage order is the direction of data.
 */
import { STAGE_ORDER as STAGES, type StageName } from '../../agent/run/stage.js';

export type Place =
  /** Imports only other leaves: shared types, contracts, codecs, utilities. */
  | { kind: 'leaf' }
  | { kind: 'stage'; stage: StageName }
  /** agent/store/: every SQL statement, the persistence every stage reads and writes through; imports leaves only. */
  | { kind: 'store' }
  /** Health, metrics, status page, doctor: observe every stage, nothing calls into them. */
  | { kind: 'side' }
  /** The run assembly and what stands above it: config assembly, registries, CLI. */
  | { kind: 'assembly' }
  /** The network side (a separate program) and the offline chain audit. */
  | { kind: 'network' };

const RULES: [RegExp, Place][] = [
  [/^(util|contracts|payloads|clock|progress|types-ext)\//, { kind: 'leaf' }],
  [/^(errors|log|types)\.ts$/, { kind: 'leaf' }],
  [/^identity\/chain-verify\.ts$/, { kind: 'network' }],
  [/^identity\//, { kind: 'leaf' }],
  [/^(sources|uplink)\/registry\.ts$/, { kind: 'assembly' }],
  // A plugin's registration and doctor check: read by the registry, init and doctor, never by a stage.
  [/^(sources|uplink)\/[^/]+\/(plugin|doctor-check)\.ts$/, { kind: 'assembly' }],
  [/^sources\//, { kind: 'stage', stage: 'sources' }],
  [/^ingest\//, { kind: 'stage', stage: 'ingest' }],
  [/^guard\//, { kind: 'stage', stage: 'guard' }],
  [/^store\//, { kind: 'store' }],
  [/^pipeline\/group-commit\.ts$/, { kind: 'stage', stage: 'commit' }],
  [/^inference\//, { kind: 'stage', stage: 'score' }],
  [/^pipeline\/(inference-stage|informative-verdicts)\.ts$/, { kind: 'stage', stage: 'score' }],
  [/^pipeline\/(batcher|heartbeat|batch-encoder|leaf-cache)\.ts$/, { kind: 'stage', stage: 'batch' }],
  [/^uplink\//, { kind: 'stage', stage: 'uplink' }],
  [/^pipeline\/forwarder\.ts$/, { kind: 'stage', stage: 'uplink' }],
  [/^health\/doctor\//, { kind: 'assembly' }],
  [/^health\//, { kind: 'side' }],
  // Side outputs (Home Assistant discovery, last values for messages): fed by the run, called by no stage but through contracts.
  [/^integrations\//, { kind: 'side' }],
  // Adaptive reporting: fed committed readings and alert changes by the run, reaches devices through contracts/interval-control.ts.
  [/^adaptive\//, { kind: 'side' }],
  [/^(run|config|cli)\//, { kind: 'assembly' }],
  // Remote updates re-assemble part of the run (a new model set, a new config): above the stages.
  [/^update\//, { kind: 'assembly' }],
  [/^receiver\//, { kind: 'network' }],
];

export function classify(path: string): Place | undefined {
  return RULES.find(([re]) => re.test(path))?.[1];
}

const stageIndex = (s: StageName) => STAGES.indexOf(s);

/** Why `from` may not import `to`, or undefined when it may. */
export function whyNot(from: Place, to: Place): string | undefined {
  if (from.kind === 'assembly') return undefined;
  if (to.kind === 'assembly') return 'imports the run assembly (run/, config/, cli/, registries): assemble in run/, pass what is needed in';
  if (from.kind === 'leaf') return to.kind === 'leaf' ? undefined : 'a leaf imports only other leaves';
  if (from.kind === 'store') return to.kind === 'leaf' || to.kind === 'store' ? undefined : 'the store imports only leaves: stages call it, it calls no stage';
  if (from.kind === 'side' || from.kind === 'network') return undefined;
  // from is a stage
  if (to.kind === 'side') return 'a stage calls into the health side: health observes stages, take an observer interface instead';
  if (to.kind === 'network') return 'a stage imports the network side';
  if (to.kind === 'stage' && to.stage !== from.stage) {
    // Stages meet through interfaces in agent/contracts/ and through the store, never directly.
    return stageIndex(to.stage) > stageIndex(from.stage)
      ? `stage ${from.stage} imports the later stage ${to.stage}: take the next stage's interface (agent/contracts/) from the run instead`
      : `stage ${from.stage} imports the earlier stage ${to.stage}: share it through agent/util/ or agent/contracts/, or read it from the store`;
  }
  return undefined;
}

export function importViolations(file: string, imports: readonly string[]): string[] {
  const from = classify(file);
  if (!from) return [`${file}: has no place in test/helpers/import-rules.ts`];
  const out: string[] = [];
  for (const target of imports) {
    const to = classify(target);
    const why = to ? whyNot(from, to) : `imports ${target}, which has no place in test/helpers/import-rules.ts`;
    if (why) out.push(`${file} -> ${target}: ${why}`);
  }
  return out;
}
