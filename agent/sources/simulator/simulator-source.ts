import type { Reading } from '../../types.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { SimulatorSourceConfig } from './config.js';

/** mulberry32: a tiny seeded PRNG, so a demo produces the same values on every board. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Simulated temperature sensors (a daily-looking sine plus noise) feeding the real pipeline.
 * For demos and for checking an install end to end before real sensors are wired; `fault`
 * makes one sensor jump, so the anomaly detector has something to find.
 */
export class SimulatorSource implements Source {
  readonly id: string;
  private timer: NodeJS.Timeout | undefined;
  private readonly random: () => number;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private tick = 0;
  private lastError: string | undefined;
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cfg: SimulatorSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    this.random = prng(cfg.seed);
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.emit(), this.cfg.interval_ms);
  }

  private emit(): void {
    const now = Date.now();
    const timeSource = this.ctx.clock.gatewayTimeSource(now);
    const readings: Reading[] = [];
    for (let i = 0; i < this.cfg.sensors; i++) {
      const fault = this.cfg.fault;
      const failing = fault !== undefined && fault.sensor === i + 1 && this.tick >= fault.after;
      const value = 20 + 5 * Math.sin((this.tick + i * 7) / 60) + (this.random() - 0.5) + (failing ? fault.offset : 0);
      readings.push({ sensor: `sim-${String(i + 1).padStart(2, '0')}`, ts: now, timeSource, value: Math.round(value * 1000) / 1000, unit: 'Cel' });
    }
    this.tick++;
    this.inFlight = this.ctx.sink.submit({ source: this.id, readings }).then(
      (r) => {
        this.stats.accepted += r.accepted;
        this.stats.duplicates += r.duplicates;
      },
      (err: Error) => {
        this.lastError = err.message;
        this.ctx.log.error({ err }, 'could not store simulated readings');
      },
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.inFlight;
  }

  health(): SourceHealth {
    const h: SourceHealth = { type: 'simulator', connected: true, endpoint: `${this.cfg.sensors} sensors every ${this.cfg.interval_ms} ms`, ...this.stats };
    if (this.lastError) h.lastError = this.lastError;
    return h;
  }
}
