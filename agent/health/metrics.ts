/**
 * The agent's metrics as the components see them. prom-client and its dependencies are ~90 modules
 * (~60-70 ms of a cold start on a Pi-class core), none needed before the first acknowledgement, so
 * the Prometheus side (prom-metrics.ts) is loaded by `load()` once the run is started
 * (Observability.start) or by the first scrape. What the components report before that is kept,
 * in order, and applied when it is loaded: nothing is lost, and a scrape sees it all.
 */
import type { PromMetrics } from './prom-metrics.js';

/** What the agent knows at scrape time; read from the store and the running components. */
export interface AgentStateView {
  batchCounts(): Record<string, number>;
  oldestPendingCreatedAt(): number | null;
  unbatched(): { count: number; oldestReceivedAt: number | null };
  storeBytes(): number;
  /** Bytes written to storage over the agent's life, and the projected GB/day (optional: older views). */
  storeWrites?(): { written_bytes: number; projected_gb_per_day: number | null };
  counters(): { name: string; label: string; value: number }[];
  sources(): { id: string; type: string; connected: boolean; counters?: Record<string, number> }[];
  clockSynced(): boolean;
  uplink(): { lastSuccessAt: number | null; consecutiveFailures: number } | undefined;
}

export interface MetricsOptions {
  /** Distinct sensor (and alert key) label values before new ones are counted under "_other". */
  maxSensorLabels: number;
  /** Node.js process metrics (memory, CPU, event loop lag); off in unit tests. */
  processMetrics?: boolean;
  /** Label values per `counters` table family before the rest are summed under "_other". */
  maxCounterLabels?: number;
}

/** The exposition format's content type (prom-client's Registry.PROMETHEUS_CONTENT_TYPE). */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Metrics {
  private impl: PromMetrics | undefined;
  private loading: Promise<PromMetrics> | undefined;
  /** Calls made before prom-client was loaded; a few per commit, for the ~100 ms of a start. */
  private pending: ((m: PromMetrics) => void)[] = [];
  private state: AgentStateView | undefined;

  constructor(private readonly opts: MetricsOptions) {}

  /** Loads prom-client and applies what was reported so far; later calls go straight to it. */
  load(): Promise<PromMetrics> {
    this.loading ??= import('./prom-metrics.js').then(({ PromMetrics }) => {
      const m = new PromMetrics(this.opts);
      if (this.state) m.bindState(this.state);
      for (const call of this.pending) call(m);
      this.pending = [];
      this.impl = m;
      return m;
    });
    return this.loading;
  }

  private call(f: (m: PromMetrics) => void): void {
    if (this.impl) f(this.impl);
    else this.pending.push(f);
  }

  /** The group commit calls this after each commit, per source and sensor. */
  readingsCommitted(source: string, sensor: string, n: number): void {
    this.call((m) => m.readingsCommitted(source, sensor, n));
  }

  /** The forwarder calls this when a batch is acknowledged, per source and sensor of its readings. */
  readingsDelivered(source: string, sensor: string, n: number): void {
    this.call((m) => m.readingsDelivered(source, sensor, n));
  }

  /** One delivery attempt of one batch. */
  uplinkAttempt(seconds: number, outcome: 'delivered' | 'failed' | 'rejected'): void {
    this.call((m) => m.uplinkAttempt(seconds, outcome));
  }

  /** For the inference runtime: one run of `modelId` that scored `windows` windows in `seconds`. */
  inferenceRun(modelId: string, seconds: number, windows: number): void {
    this.call((m) => m.inferenceRun(modelId, seconds, windows));
  }

  /** For the inference runtime: a verdict raised (`raised` true) or cleared an alert for `key`. */
  alertChanged(modelId: string, key: string, raised: boolean): void {
    this.call((m) => m.alertChanged(modelId, key, raised));
  }

  /** Gauges read at scrape time come from here (store backlog, sources, clock...). */
  bindState(state: AgentStateView): void {
    this.state = state;
    this.impl?.bindState(state);
  }

  get contentType(): string {
    return CONTENT_TYPE;
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    return (await this.load()).render();
  }
}
