/**
 * node dist/scripts/eval/nab-sweep.js '{JSON override of the stream-ad manifest entry}' [--parts tune|check|all,...] [--skab] [--data DIR]
 *
 * How stream-ad's statistical parameters are chosen (MODEL_CARD.md, "what was tried"): the
 * override is merged into a copy of the shipped manifest entry (e.g.
 * '{"alert":{"on":0.5},"score":{"calibration":{"likelihood":{"halflife":2000,"short":3,"weight":0.5}}}}'),
 * nab-dev is replayed through the CLI and scored (evalNab; iterate with --parts tune and look at
 * the check half once for the final choice), and with --skab SKAB per channel is measured too.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dataDirFromArgs, loadSkab } from '../train/lib/datasets.js';
import { evalNab, nabScorer, type NabPart } from './nab.js';
import { evalStreamAd } from './skab.js';

type Json = Record<string, unknown>;

function merge(into: Json, over: Json): Json {
  for (const [k, v] of Object.entries(over)) {
    const cur = into[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) merge(cur as Json, v as Json);
    else into[k] = v;
  }
  return into;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const overrideText = args.find((a) => a.startsWith('{')) ?? '{}';
  let override: Json;
  try {
    override = JSON.parse(overrideText) as Json;
  } catch (err) {
    throw new Error(`the override is not JSON (${(err as Error).message}): ${overrideText}`);
  }
  const partsAt = args.indexOf('--parts');
  const parts = (partsAt === -1 ? 'tune,check,all' : args[partsAt + 1]!).split(',') as NabPart[];
  if (!parts.every((p) => ['tune', 'check', 'all'].includes(p))) throw new Error(`--parts: expected tune, check and/or all, got "${parts.join(',')}"`);
  const dataDir = dataDirFromArgs(process.argv);
  const models = mkdtempSync(path.join(tmpdir(), 'edge-agent-sweep-'));
  try {
    cpSync(path.resolve('models'), models, { recursive: true });
    const manifestPath = path.join(models, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { models: Json[] };
    const entry = manifest.models.find((m) => m['id'] === 'stream-ad');
    if (!entry) throw new Error('models/manifest.json has no stream-ad entry');
    merge(entry, override);
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const nab = await evalNab(path.join(dataDir, 'nab-dev'), models, { parts, scorer: nabScorer(dataDir) });
    const fig = (s: (typeof nab)['score']) => parts.map((p) => `${p} ${s[p].standard.toFixed(1)}`).join(', ');
    console.log(`NAB standard, anomaly_score: ${fig(nab.score)};  alert onsets: ${fig(nab.onsets)}`);
    if (args.includes('--skab')) {
      const skab = loadSkab(dataDir);
      const r = await evalStreamAd(models, skab.faults, skab.free);
      console.log(`SKAB per channel: F1 ${r.pooled.f1.toFixed(3)}  FAR ${r.pooled.far.toFixed(1)}%  MAR ${r.pooled.mar.toFixed(1)}%;  anomaly-free run ${r.freeAlertsPer1000Rows.toFixed(2)} alerts per 1,000 rows`);
    }
    console.log(`override ${JSON.stringify(override)}`);
  } finally {
    rmSync(models, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
