import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LabelCap, OTHER_LABEL } from './label-cap.js';
import type { AgentStateView, MetricsOptions } from './metrics.js';


const PREFIX = 'edge_agent_';
const UPLINK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const INFERENCE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * The agent's Prometheus metrics on prom-client: one Registry, each component calling the explicit
 * method for what it did (through Metrics, metrics.ts, which loads this module after start-up).
 * Sensor ids are chosen by whoever publishes, so they are capped as label values (see LabelCap).
 */
export class PromMetrics {
  readonly registry = new Registry();
  private readonly sensors: LabelCap;
  private readonly alertKeys: LabelCap;
  private readonly maxCounterLabels: number;
  private readonly readingsIn;
  private readonly readingsOut;
  private readonly overflow;
  private readonly uplinkSeconds;
  private readonly uplinkErrors;
  private readonly inferenceSeconds;
  private readonly inferenceWindows;
  private readonly alertTransitions;
  private readonly alertActive;
  private readonly counterFamilies = new Map<string, Counter<'label'>>();
  private state: AgentStateView | undefined;

  constructor(opts: MetricsOptions) {
    const registers = [this.registry];
    this.sensors = new LabelCap(opts.maxSensorLabels);
    this.alertKeys = new LabelCap(opts.maxSensorLabels);
    this.maxCounterLabels = opts.maxCounterLabels ?? 200;
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });

    this.readingsIn = new Counter({
      name: `${PREFIX}readings_committed_total`,
      help: 'Readings committed to the store (acknowledged to their sender), by source and sensor',
      labelNames: ['source', 'sensor'],
      registers,
    });
    this.readingsOut = new Counter({
      name: `${PREFIX}readings_delivered_total`,
      help: 'Readings in batches the uplink acknowledged, by source and sensor',
      labelNames: ['source', 'sensor'],
      registers,
    });
    this.overflow = new Counter({
      name: `${PREFIX}metrics_label_overflow_total`,
      help: `Observations counted under "${OTHER_LABEL}" because the label cap (http.max_sensor_labels) was reached`,
      labelNames: ['label'],
      registers,
    });
    this.uplinkSeconds = new Histogram({
      name: `${PREFIX}uplink_request_duration_seconds`,
      help: 'Time to deliver one batch (or fail), by outcome',
      labelNames: ['outcome'],
      buckets: UPLINK_BUCKETS,
      registers,
    });
    this.uplinkErrors = new Counter({ name: `${PREFIX}uplink_errors_total`, help: 'Failed or rejected batch deliveries', labelNames: ['outcome'], registers });
    this.inferenceSeconds = new Histogram({
      name: `${PREFIX}inference_duration_seconds`,
      help: 'Time of one model run, by model',
      labelNames: ['model'],
      buckets: INFERENCE_BUCKETS,
      registers,
    });
    this.inferenceWindows = new Counter({ name: `${PREFIX}inference_windows_total`, help: 'Windows scored, by model', labelNames: ['model'], registers });
    this.alertTransitions = new Counter({
      name: `${PREFIX}anomaly_alerts_total`,
      help: 'Anomaly alert transitions by model, key (sensor or asset) and direction (raised, cleared)',
      labelNames: ['model', 'key', 'direction'],
      registers,
    });
    this.alertActive = new Gauge({ name: `${PREFIX}anomaly_alert_active`, help: '1 while an alert is raised, by model and key', labelNames: ['model', 'key'], registers });
    this.registerStateGauges(registers);
  }

  /** The group commit calls this after each commit, per source and sensor. */
  readingsCommitted(source: string, sensor: string, n: number): void {
    if (n > 0) this.readingsIn.inc({ source, sensor: this.sensorLabel(this.sensors, 'sensor', sensor, n) }, n);
  }

  /** The forwarder calls this when a batch is acknowledged, per source and sensor of its readings. */
  readingsDelivered(source: string, sensor: string, n: number): void {
    if (n > 0) this.readingsOut.inc({ source, sensor: this.sensorLabel(this.sensors, 'sensor', sensor, n) }, n);
  }

  /** One delivery attempt of one batch. */
  uplinkAttempt(seconds: number, outcome: 'delivered' | 'failed' | 'rejected'): void {
    this.uplinkSeconds.observe({ outcome }, seconds);
    if (outcome !== 'delivered') this.uplinkErrors.inc({ outcome });
  }

  /** For the inference runtime: one run of `modelId` that scored `windows` windows in `seconds`. */
  inferenceRun(modelId: string, seconds: number, windows: number): void {
    this.inferenceSeconds.observe({ model: modelId }, seconds);
    if (windows > 0) this.inferenceWindows.inc({ model: modelId }, windows);
  }

  /** For the inference runtime: a verdict raised (`raised` true) or cleared an alert for `key`. */
  alertChanged(modelId: string, key: string, raised: boolean): void {
    const label = this.sensorLabel(this.alertKeys, 'key', key, 1);
    this.alertTransitions.inc({ model: modelId, key: label, direction: raised ? 'raised' : 'cleared' });
    // Past the cap several keys share "_other": its gauge would be meaningless, so it is left out.
    if (label !== OTHER_LABEL) this.alertActive.set({ model: modelId, key: label }, raised ? 1 : 0);
  }

  /** Gauges read at scrape time come from here (store backlog, sources, clock...). */
  bindState(state: AgentStateView): void {
    this.state = state;
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    this.syncCounterFamilies();
    return this.registry.metrics();
  }

  private sensorLabel(cap: LabelCap, kind: string, value: string, n: number): string {
    const label = cap.label(value);
    if (label === OTHER_LABEL) this.overflow.inc({ label: kind }, n);
    return label;
  }

  /** The `counters` table, one family per counter name, so counters added by any component appear here. */
  private syncCounterFamilies(): void {
    const rows = this.state?.counters() ?? [];
    const byName = new Map<string, { label: string; value: number }[]>();
    for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
    for (const [name, entries] of byName) {
      let family = this.counterFamilies.get(name);
      if (!family) {
        family = new Counter({
          name: `${PREFIX}counter_${name.replace(/[^a-zA-Z0-9_]/g, '_')}_total`,
          help: `Persistent counter "${name}" from the store's counters table (survives restarts), by label`,
          labelNames: ['label'],
          registers: [this.registry],
        });
        this.counterFamilies.set(name, family);
      }
      family.reset();
      entries.sort((a, b) => b.value - a.value);
      let other = 0;
      entries.forEach((e, i) => {
        if (i < this.maxCounterLabels) family.inc({ label: e.label }, e.value);
        else other += e.value;
      });
      if (other > 0) family.inc({ label: OTHER_LABEL }, other);
    }
  }

  private registerStateGauges(registers: Registry[]): void {
    const view = () => this.state;
    new Gauge({
      name: `${PREFIX}batches`,
      help: 'Batches in the store by state (pending = the backlog waiting for the uplink)',
      labelNames: ['state'],
      registers,
      collect() {
        const s = view();
        if (!s) return;
        this.reset();
        for (const [state, n] of Object.entries(s.batchCounts())) this.set({ state }, n);
      },
    });
    const now = () => Date.now();
    new Gauge({
      name: `${PREFIX}backlog_oldest_pending_age_seconds`,
      help: 'Age of the oldest batch not yet acknowledged by the uplink (0 when none)',
      registers,
      collect() {
        const at = view()?.oldestPendingCreatedAt();
        this.set(at ? Math.max(0, (now() - at) / 1000) : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}readings_unbatched`,
      help: 'Committed readings not yet in a batch',
      registers,
      collect() {
        const s = view();
        if (s) this.set(s.unbatched().count);
      },
    });
    new Gauge({
      name: `${PREFIX}store_bytes`,
      help: 'Size of the SQLite store on disk (database and write-ahead log)',
      registers,
      collect() {
        const s = view();
        if (s) this.set(s.storeBytes());
      },
    });
    // SD-card wear (issue 13): the persistent counter store_bytes_written, under its own name.
    new Counter({
      name: `${PREFIX}store_bytes_written_total`,
      help: 'Bytes the agent has written to storage (write_bytes of /proc/self/io: WAL, checkpoints, fsyncs), over its life',
      registers,
      collect() {
        const w = view()?.storeWrites?.();
        if (!w) return;
        this.reset();
        this.inc(w.written_bytes);
      },
    });
    new Gauge({
      name: `${PREFIX}store_write_projected_bytes_per_day`,
      help: 'Bytes written per hour over the last hour, projected over a day (absent in the first minute)',
      registers,
      collect() {
        const w = view()?.storeWrites?.();
        this.reset();
        if (w && w.projected_gb_per_day !== null) this.set(w.projected_gb_per_day * 1e9);
      },
    });
    new Gauge({
      name: `${PREFIX}source_connected`,
      help: '1 when the source is connected or listening, by source and type',
      labelNames: ['source', 'type'],
      registers,
      collect() {
        const s = view();
        if (!s) return;
        this.reset();
        for (const src of s.sources()) this.set({ source: src.id, type: src.type }, src.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}source_counter`,
      help: "A source's own counters since the agent started, across port reopens (serial: crc_errors, gaps, ...), by source and name",
      labelNames: ['source', 'name'],
      registers,
      collect() {
        const s = view();
        if (!s) return;
        this.reset();
        for (const src of s.sources()) for (const [name, v] of Object.entries(src.counters ?? {})) this.set({ source: src.id, name }, v);
      },
    });
    new Gauge({
      name: `${PREFIX}clock_synced`,
      help: '1 when the gateway clock is known to be synchronised',
      registers,
      collect() {
        const s = view();
        if (s) this.set(s.clockSynced() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}uplink_consecutive_failures`,
      help: 'Failed delivery attempts since the last success',
      registers,
      collect() {
        const u = view()?.uplink();
        if (u) this.set(u.consecutiveFailures);
      },
    });
    new Gauge({
      name: `${PREFIX}uplink_last_success_timestamp_seconds`,
      help: 'Unix time of the last acknowledged delivery (0: never)',
      registers,
      collect() {
        const u = view()?.uplink();
        if (u) this.set(u.lastSuccessAt ? u.lastSuccessAt / 1000 : 0);
      },
    });
  }
}
