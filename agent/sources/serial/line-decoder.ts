import { checkSensorId } from '../../payloads/types.js';

// Text line mode, PROTOCOL.md §5: `name=value[,name=value]` per line.
const MAX_LINE = 256;
const DECIMAL = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

export interface LineSample {
  sensor: string;
  value: number;
}

export class LineDecoder {
  readonly rejected = new Map<string, number>();
  private readonly buf = new Uint8Array(MAX_LINE);
  private len = 0;
  private tooLong = false;

  private reject(reason: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  push(chunk: Uint8Array): LineSample[] {
    const out: LineSample[] = [];
    for (const b of chunk) {
      if (b !== 0x0a) {
        if (this.len < MAX_LINE) this.buf[this.len++] = b;
        else this.tooLong = true;
        continue;
      }
      if (this.tooLong) this.reject(`line longer than ${MAX_LINE} bytes`);
      else this.parseLine(this.buf.subarray(0, this.len), out);
      this.len = 0;
      this.tooLong = false;
    }
    return out;
  }

  private parseLine(bytes: Uint8Array, out: LineSample[]): void {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/\r$/, '').trim();
    } catch {
      return this.reject('line is not UTF-8');
    }
    if (text === '') return;
    for (const pair of text.split(',')) {
      const eq = pair.indexOf('=');
      if (eq === -1) {
        this.reject('no "=" in pair');
        continue;
      }
      const sensor = pair.slice(0, eq).trim();
      const raw = pair.slice(eq + 1).trim();
      const bad = sensor === '' ? 'empty name' : checkSensorId(sensor);
      if (bad) {
        this.reject('bad sensor name');
        continue;
      }
      const value = Number(raw);
      if (!DECIMAL.test(raw) || !Number.isFinite(value)) {
        this.reject('value is not a finite decimal number');
        continue;
      }
      out.push({ sensor, value });
    }
  }
}
