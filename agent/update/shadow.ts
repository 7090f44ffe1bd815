import { errorMessage } from '../errors.js';
import type { InferenceConfig } from '../inference/config.js';
import { findModel, loadManifest, type Manifest } from '../inference/manifest.js';
import { ModelRunner, type Verdict } from '../inference/model-runner.js';
import { OnnxModel } from '../inference/onnx-model.js';
import { Binding, Router } from '../inference/router.js';
import { UpdateRefused } from '../identity/update-bundle.js';
import { checkBinding } from '../inference/load-bindings.js';
import type { StoredReading } from '../types.js';
import type { UpdateConfig } from './config.js';

export interface ShadowResult {
  compared: number;
  differing: number;
  /** differing / compared; 0 when nothing was compared. */
  disagreement: number;
  /** The first few differences, for the refusal's reason. */
  examples: string[];
  /** Why there was nothing to compare with: the running set cannot load (the update may be its repair). */
  skipped?: string;
}

/** Every bound model of `dir` loaded and probed (OnnxModel.load runs one probe), each binding checked against it. */
async function loadSet(dir: string, cfg: InferenceConfig, publisherKey: Uint8Array | undefined, what: 'staged' | 'running'): Promise<{ manifest: Manifest; bindings: Binding[]; close(): Promise<void> }> {
  const refuse = (reason: 'invalid' | 'probe-failed', err: unknown) => new UpdateRefused(reason, `${what} model set: ${errorMessage(err)}`);
  let manifest: Manifest;
  try {
    manifest = loadManifest(dir, publisherKey ? { publisherKey } : {});
  } catch (err) {
    throw refuse('invalid', err);
  }
  const models = new Map<string, OnnxModel>();
  const bindings: Binding[] = [];
  const close = async () => void (await Promise.allSettled([...models.values()].map((m) => m.close())));
  try {
    for (const [id, b] of Object.entries(cfg.bindings)) {
      let model = models.get(b.model);
      if (!model) {
        let entry;
        try {
          entry = findModel(manifest, b.model);
          checkBinding(id, b, entry, 'inference');
        } catch (err) {
          throw refuse('invalid', err);
        }
        try {
          models.set(b.model, (model = await OnnxModel.load(manifest, entry)));
        } catch (err) {
          throw refuse('probe-failed', err);
        }
      }
      bindings.push(new Binding(id, b, new ModelRunner(model, b.warmup === undefined ? {} : { warmup: b.warmup })));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { manifest, bindings, close };
}

/** Each binding's verdicts over `readings`, from a fresh state, in row order (null: no verdict for that row yet). */
async function verdictsOver(bindings: Binding[], readings: readonly StoredReading[]): Promise<Map<string, (Verdict | null)[]>> {
  const out = new Map<string, (Verdict | null)[]>();
  const { rows } = new Router(bindings).route(readings);
  for (const [binding, list] of rows) out.set(binding.id, await binding.runner.push(list));
  return out;
}

/**
 * Loads and probes the staged model set, then runs it and the running set side by side, each from
 * a fresh state, over the same recent readings, and compares their verdicts row by row
 * (docs/updates.md §5). Both start cold so that the comparison measures the models, not the
 * running set's longer memory. Refuses with `probe-failed`, `invalid` or `shadow-disagrees`.
 */
export async function shadowCompare(opts: {
  stagedDir: string;
  runningDir: string;
  inference: InferenceConfig;
  publisherKey?: Uint8Array;
  readings: readonly StoredReading[];
  bounds: UpdateConfig['shadow'];
}): Promise<ShadowResult> {
  const staged = await loadSet(opts.stagedDir, opts.inference, opts.publisherKey, 'staged');
  let running: Awaited<ReturnType<typeof loadSet>> | undefined;
  try {
    try {
      running = await loadSet(opts.runningDir, opts.inference, opts.publisherKey, 'running');
    } catch (err) {
      // A gateway whose models are damaged or missing is the one that needs this update most:
      // the staged set passed its probe, and there is no verdict to hold it against.
      return { compared: 0, differing: 0, disagreement: 0, examples: [], skipped: errorMessage(err) };
    }
    const [next, now] = [await verdictsOver(staged.bindings, opts.readings), await verdictsOver(running.bindings, opts.readings)];
    const result: ShadowResult = { compared: 0, differing: 0, disagreement: 0, examples: [] };
    for (const [binding, current] of now) {
      const fresh = next.get(binding) ?? [];
      current.forEach((a, i) => {
        const b = fresh[i];
        if (!a || !b) return;
        result.compared++;
        const alertDiffers = a.alert !== b.alert;
        if (alertDiffers || Math.abs(a.value - b.value) > opts.bounds.score_tolerance) {
          result.differing++;
          if (result.examples.length < 3) result.examples.push(`${binding} ${a.key}: ${alertDiffers ? `alert ${a.alert} -> ${b.alert}` : `score ${a.value.toFixed(3)} -> ${b.value.toFixed(3)}`}`);
        }
      });
    }
    result.disagreement = result.compared === 0 ? 0 : result.differing / result.compared;
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    if (result.compared < opts.bounds.min_verdicts) {
      throw new UpdateRefused('shadow-inconclusive', `shadow run over ${opts.readings.length} recent readings gave ${result.compared} comparable verdicts, fewer than update.shadow.min_verdicts (${opts.bounds.min_verdicts}): it cannot vouch for the new set yet; offer it again once more readings are stored`);
    }
    if (result.disagreement > opts.bounds.max_disagreement) {
      throw new UpdateRefused(
        'shadow-disagrees',
        `shadow run: ${result.differing} of ${result.compared} verdicts differ (${pct(result.disagreement)}, bound update.shadow.max_disagreement ${pct(opts.bounds.max_disagreement)}), e.g. ${result.examples.join('; ')}`,
      );
    }
    return result;
  } finally {
    await staged.close();
    await running?.close();
  }
}
