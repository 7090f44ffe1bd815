import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { BatchStore } from '../store/batch-store.js';
import { openDatabase } from '../store/database.js';
import { absDir, dataDirOption } from './common.js';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write one signed batch (its CBOR envelope, as sent upstream) to a file, for edge-agent verify FILE')
    .addOption(dataDirOption())
    .requiredOption('--seq <n>', 'batch sequence number', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new AgentError('USAGE', `--seq: expected a positive integer, got "${v}"`);
      return n;
    })
    .requiredOption('-o, --out <file>', 'file to write')
    .action((opts: { dataDir: string; seq: number; out: string }) => {
      const loaded = loadConfig(absDir(opts.dataDir));
      const db = openDatabase(loaded.resolvePath(loaded.config.store.path), { readonly: true });
      try {
        const row = new BatchStore(db).get(opts.seq);
        if (!row) throw new AgentError('USAGE', `no batch ${opts.seq} in ${loaded.config.store.path}`);
        writeFileSync(opts.out, row.envelope);
        process.stdout.write(`batch ${opts.seq} (${row.reading_count} readings, ${row.envelope.length} bytes) written to ${opts.out}\n`);
      } finally {
        db.close();
      }
    });
}
