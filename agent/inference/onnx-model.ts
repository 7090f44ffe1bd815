import type { InferenceSession as OrtSession } from 'onnxruntime-node';
import './ort-privacy.js'; // before onnxruntime loads: no telemetry, no device id on the SD card
import { AgentError, errorMessage } from '../errors.js';
import { readVerifiedModel, type Manifest, type ModelEntry } from './manifest.js';

/**
 * Windows per `session.run`. Each call is one await, and under an ingest burst every await waits
 * a whole event-loop turn (hundreds of ms): with 1,024 a 16k-reading pass took 14 s while MQTT
 * flooded in. 16,384 makes a live pass one call; its tensors stay a few MB for the shipped models.
 */
export const MAX_RUN_BATCH = 16_384;

export type ModelOutputs = Record<string, Float32Array>;

/**
 * One verified model in an onnxruntime-node session. `run` takes N windows of shape [W, F]
 * packed row-major and returns each declared output as N values.
 */
export class OnnxModel {
  readonly window: number;
  readonly features: number;
  readonly sha256: Uint8Array;

  private constructor(
    readonly entry: ModelEntry,
    private readonly session: OrtSession,
    private readonly ort: typeof import('onnxruntime-node'),
  ) {
    this.window = entry.input.window;
    this.features = entry.input.features.length;
    this.sha256 = Buffer.from(entry.sha256, 'hex');
  }

  /** Verifies the sha256, creates the session, and checks the graph's inputs and outputs with one probe run. */
  static async load(manifest: Manifest, entry: ModelEntry): Promise<OnnxModel> {
    const bytes = readVerifiedModel(manifest, entry);
    // Loaded lazily: onnxruntime's native library costs ~100 ms, which CLI commands without models skip.
    const ort = await import('onnxruntime-node');
    let session: OrtSession;
    try {
      // One thread: on a gateway, inference must not starve ingest and commits of the other core.
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (err) {
      throw new AgentError('MODEL_INVALID', `model ${entry.id} (${entry.file}): onnxruntime cannot load it: ${errorMessage(err)}`);
    }
    const missingIn = session.inputNames.includes(entry.input.name) ? [] : [entry.input.name];
    const missingOut = entry.outputs.map((o) => o.name).filter((n) => !session.outputNames.includes(n));
    if (missingIn.length > 0 || missingOut.length > 0) {
      await session.release();
      throw new AgentError(
        'MODEL_INVALID',
        `model ${entry.id}: the graph has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}]; ` +
          `the manifest names ${[...missingIn.map((n) => `input ${n}`), ...missingOut.map((n) => `output ${n}`)].join(', ')}, which it lacks`,
      );
    }
    const model = new OnnxModel(entry, session, ort);
    try {
      await model.run(new Float32Array(2 * model.window * model.features), 2);
    } catch (err) {
      await session.release();
      throw new AgentError('MODEL_INVALID', `model ${entry.id}: probe run failed: ${errorMessage(err)}`);
    }
    return model;
  }

  async run(windows: Float32Array, n: number): Promise<ModelOutputs> {
    const out: ModelOutputs = {};
    for (const o of this.entry.outputs) out[o.name] = new Float32Array(n);
    const per = this.window * this.features;
    for (let start = 0; start < n; start += MAX_RUN_BATCH) {
      const count = Math.min(MAX_RUN_BATCH, n - start);
      const x = new this.ort.Tensor('float32', windows.subarray(start * per, (start + count) * per), [count, this.window, this.features]);
      const results = await this.session.run({ [this.entry.input.name]: x });
      for (const o of this.entry.outputs) {
        const t = results[o.name];
        if (!t || t.type !== 'float32' || t.data.length !== count) {
          throw new Error(`output ${o.name} should hold ${count} float32 values (shape [N] or [N,1]), got ${t ? `${t.type} [${t.dims.join(',')}]` : 'nothing'}`);
        }
        out[o.name]!.set(t.data as Float32Array, start);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
