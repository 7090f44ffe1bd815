import { AgentError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { InferenceConfig } from './config.js';
import { findModel, loadManifest, type Manifest, type ModelEntry } from './manifest.js';
import { ModelRunner } from './model-runner.js';
import { OnnxModel } from './onnx-model.js';
import { Binding } from './router.js';

const MODEL_FILE_PROBLEMS = new Set(['MODEL_TAMPERED', 'MODEL_INVALID', 'MODEL_NOT_FOUND']);

/** A damaged, missing or unsigned model file or manifest, as opposed to a configuration mistake. */
function isModelFileProblem(err: unknown): boolean {
  return err instanceof AgentError && MODEL_FILE_PROBLEMS.has(err.code);
}

export function checkBinding(id: string, b: Binding['cfg'], m: ModelEntry, configPath: string): void {
  const where = `${configPath}: inference.bindings.${id}`;
  if (b.sensors && m.input.features.length !== 1) {
    throw new AgentError('CONFIG_INVALID', `${where}: model ${m.id} takes ${m.input.features.length} channels (${m.input.features.join(', ')}): bind it with asset and channels, not sensors`);
  }
  if (b.channels) {
    const given = Object.keys(b.channels);
    const missing = m.input.features.filter((f) => !given.includes(f));
    const unknown = given.filter((f) => !m.input.features.includes(f));
    if (missing.length > 0 || unknown.length > 0) {
      throw new AgentError(
        'CONFIG_INVALID',
        `${where}.channels: model ${m.id} takes exactly [${m.input.features.join(', ')}]` +
          `${missing.length ? `; missing: ${missing.join(', ')}` : ''}${unknown.length ? `; not inputs of the model: ${unknown.join(', ')}` : ''}`,
      );
    }
  }
}

/** The bindings that will run, and those disabled with the reason (a model file that cannot be trusted or loaded). */
export interface LoadedBindings {
  bindings: Binding[];
  disabled: Record<string, { model: string; reason: string }>;
}

/**
 * Loads and checks every bound model (sha256, graph, binding shape). A configuration mistake
 * throws CONFIG_INVALID naming the key; a model file that is damaged, missing or not vouched for
 * disables the bindings that use it instead: such a model never runs, and readings are still
 * stored and delivered (unscored).
 */
export async function loadBindings(
  cfg: InferenceConfig,
  deps: { modelsDir: string; publisherKey?: Uint8Array; configPath: string; log: Logger },
): Promise<LoadedBindings> {
  const disabled: Record<string, { model: string; reason: string }> = {};
  const disable = (id: string, model: string, err: unknown) => {
    disabled[id] = { model, reason: errorMessage(err) };
    deps.log.error({ err, binding: id, model }, `inference binding ${id} disabled: its model cannot be trusted or loaded; readings are stored and delivered unscored`);
  };
  let manifest: Manifest | undefined;
  let manifestError: unknown;
  try {
    manifest = loadManifest(deps.modelsDir, deps.publisherKey ? { publisherKey: deps.publisherKey } : {});
  } catch (err) {
    if (!isModelFileProblem(err)) throw err;
    manifestError = err;
  }
  const models = new Map<string, OnnxModel>();
  const failedModels = new Map<string, unknown>();
  const bindings: Binding[] = [];
  for (const [id, b] of Object.entries(cfg.bindings)) {
    if (!manifest) {
      disable(id, b.model, manifestError);
      continue;
    }
    let entry: ModelEntry;
    try {
      entry = findModel(manifest, b.model);
    } catch (err) {
      throw new AgentError('CONFIG_INVALID', `${deps.configPath}: inference.bindings.${id}.model: ${errorMessage(err)}`);
    }
    checkBinding(id, b, entry, deps.configPath);
    let model = models.get(entry.id);
    if (!model && !failedModels.has(entry.id)) {
      try {
        models.set(entry.id, (model = await OnnxModel.load(manifest, entry)));
      } catch (err) {
        if (!isModelFileProblem(err)) throw err;
        failedModels.set(entry.id, err);
      }
    }
    if (!model) {
      disable(id, entry.id, failedModels.get(entry.id));
      continue;
    }
    let runner: ModelRunner;
    try {
      runner = new ModelRunner(model, { ...(b.warmup === undefined ? {} : { warmup: b.warmup }), ...(b.alert ? { alert: b.alert } : {}) });
    } catch (err) {
      const key = /^alert\./.test(errorMessage(err)) ? 'alert' : 'warmup';
      throw new AgentError('CONFIG_INVALID', `${deps.configPath}: inference.bindings.${id}.${key}: ${errorMessage(err)}`);
    }
    bindings.push(new Binding(id, b, runner));
  }
  return { bindings, disabled };
}
