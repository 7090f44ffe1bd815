import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { AgentError } from '../errors.js';
import { budgetShares, minimumBudget, type BudgetInputs } from '../store/budget-shares.js';
import { existsOrPermission, isPermissionError, permissionError } from '../util/file-access.js';
import { configSchema, type AgentConfig } from './schema.js';

/** The budget must hold what the store never drops (store/budget-shares.ts); the error gives the exact minimum. */
function budgetProblem(config: AgentConfig): string | undefined {
  const max = config.store.max_bytes;
  if (max === 0) return undefined;
  const inputs: BudgetInputs = {
    maxPending: config.batch.max_pending,
    maxReadings: config.batch.max_readings,
    mqttInflight: Object.values(config.sources).flatMap((s) => (s.type === 'mqtt' ? [s.max_inflight] : [])),
    hasUplink: config.uplink !== undefined,
    attestations: Object.values(config.sources).some((s) => s.type === 'serial' && Object.keys(s.attest_keys).length > 0),
    serial: Object.values(config.sources).some((s) => s.type === 'serial'),
    inference: config.inference !== undefined && Object.keys(config.inference.bindings).length > 0,
  };
  const minimum = minimumBudget(inputs);
  if (max >= minimum) return undefined;
  const s = budgetShares(inputs);
  return (
    `${max} bytes cannot hold what the store never drops: signed batches waiting for the uplink ` +
    `(batch.max_pending ${inputs.maxPending} x batch.max_readings ${inputs.maxReadings}: ${s.pendingBatches} bytes), ` +
    `the MQTT redelivery guard (${s.redeliveryGuard}), counters (${s.counters}), quarantine and maintenance rows (${s.guard}), sensor attestations (${s.attestations}), ` +
    `last seq per sensor (${s.sensorSeq}), serial stream positions (${s.cursors}), drops waiting for a batch (${s.dropsUnreported}), relearn requests (${s.relearnRequests}), schema (${s.schema}) and one batch of new readings (${s.newestWindow}), ` +
    `plus the WAL allowance, the events' share${inputs.inference ? " and the inference state's share" : ''}; the minimum is ${minimum} bytes: set store.max_bytes to at least ${minimum}, or lower batch.max_pending or batch.max_readings`
  );
}

export const CONFIG_FILE = 'edge-agent.yaml';

export interface LoadedConfig {
  config: AgentConfig;
  /** The config file's own directory: relative paths in it are resolved from here. */
  dataDir: string;
  path: string;
  resolvePath(p: string): string;
}

/** Validates YAML text against the schema; every problem is reported at once, each with its key path and line. */
export function parseConfig(text: string, file: string): AgentConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => `${file}:${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
    throw new AgentError('CONFIG_INVALID', `invalid YAML:\n  ${lines.join('\n  ')}`);
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (result.success) {
    const problem = budgetProblem(result.data);
    if (problem) {
      const node = doc.getIn(['store', 'max_bytes'], true);
      const line = isNode(node) && node.range ? lineCounter.linePos(node.range[0]).line : undefined;
      throw new AgentError('CONFIG_INVALID', `invalid configuration:\n  ${file}${line ? `:${line}` : ''}: store.max_bytes: ${problem}`);
    }
    return result.data;
  }
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map(String);
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const lineOf = (p: (string | number)[]) => {
      const node = doc.getIn(p, true);
      const range = isNode(node) ? node.range : undefined;
      return range ? lineCounter.linePos(range[0]).line : undefined;
    };
    if (keys.length > 0) {
      return keys.map((k) => {
        const line = lineOf([...issue.path.map((x) => x as string | number), k]);
        return `${file}${line ? `:${line}` : ''}: ${[...path, k].join('.')}: unknown key`;
      });
    }
    let line: number | undefined;
    for (let n = issue.path.length; n >= 0 && line === undefined; n--) line = lineOf(issue.path.slice(0, n).map((x) => x as string | number));
    return [`${file}${line ? `:${line}` : ''}: ${path.join('.') || '(top level)'}: ${issue.message}`];
  });
  throw new AgentError('CONFIG_INVALID', `invalid configuration:\n  ${problems.flat().join('\n  ')}`);
}

export function loadConfig(dataDir: string): LoadedConfig {
  const path = resolve(dataDir, CONFIG_FILE);
  // A data dir this user cannot enter is a permission problem, not a missing config.
  if (!existsOrPermission(path, dataDir)) {
    throw new AgentError('CONFIG_NOT_FOUND', `no config at ${path}; create one with: edge-agent init --data-dir ${dataDir}`, { exitCode: 2 });
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (isPermissionError(err)) throw permissionError(path, 'read', dataDir, err);
    throw err;
  }
  const config = parseConfig(text, path);
  const dir = dirname(path);
  return { config, dataDir: dir, path, resolvePath: (p) => (isAbsolute(p) ? p : join(dir, p)) };
}
