import type { HttpConfig } from './config.js';
import { splitHttpListen } from './config.js';
import type { Logger } from '../log.js';
import type { HealthServer } from './server.js';
import type { DeliveryObserver } from '../pipeline/forwarder.js';
import type { GroupCommitWriter } from '../pipeline/group-commit.js';
import type { Db } from '../store/database.js';
import { HealthQueries } from '../store/health-queries.js';
import type { AgentState } from './agent-state.js';
import { BacklogDrainReporter } from './backlog-drain.js';
import { Metrics } from './metrics.js';
import { checkHealth, type HealthReport } from './healthz.js';

const DEFAULT_MAX_SENSOR_LABELS = 500;
/** http.max_pending_batch_age_s's default (health/config.ts), for the report when no endpoint is configured. */
const DEFAULT_MAX_PENDING_BATCH_AGE_S = 600;

/**
 * Wires metrics, backlog progress and the HTTP endpoint into a running agent, so the Agent
 * itself only creates this and hands it its components.
 */
export class Observability {
  readonly metrics: Metrics;
  private readonly drain: BacklogDrainReporter;
  private readonly queries: HealthQueries;
  private server: HealthServer | undefined;
  private bound: { host: string; port: number } | undefined;

  constructor(
    db: Db,
    private readonly http: HttpConfig | undefined,
    private readonly log: Logger,
  ) {
    this.metrics = new Metrics({ maxSensorLabels: http?.max_sensor_labels ?? DEFAULT_MAX_SENSOR_LABELS, processMetrics: true });
    this.drain = new BacklogDrainReporter(db, log.child({ component: 'uplink' }));
    this.queries = new HealthQueries(db);
  }

  /**
   * The readiness report for the status snapshot (`edge-agent status` reads it): as /healthz answers,
   * without the store's write probe, since writing the snapshot is itself the proof (one write, not two, every 5 s).
   */
  report(state: AgentState): HealthReport {
    return checkHealth(state, { maxPendingBatchAgeS: this.http?.max_pending_batch_age_s ?? DEFAULT_MAX_PENDING_BATCH_AGE_S }, Date.now(), { probeStore: false });
  }

  /** Counts committed readings per source and sensor. */
  watchWriter(writer: GroupCommitWriter): void {
    writer.onCommittedReadings((readings) => {
      // Runs after every commit on the ingest path: plain loops, no per-reading allocation.
      const bySource = new Map<string, Map<string, number>>();
      for (const r of readings) {
        let sensors = bySource.get(r.source);
        if (!sensors) bySource.set(r.source, (sensors = new Map()));
        sensors.set(r.sensor, (sensors.get(r.sensor) ?? 0) + 1);
      }
      for (const [source, sensors] of bySource) for (const [sensor, n] of sensors) this.metrics.readingsCommitted(source, sensor, n);
    });
  }

  /** For the forwarder: uplink latency and errors, delivered readings, backlog drain progress. */
  deliveryObserver(): DeliveryObserver {
    return {
      backlogMayExist: () => this.drain.maybeStart(),
      attempt: (seq, seconds, outcome) => {
        this.metrics.uplinkAttempt(seconds, outcome);
        if (outcome === 'delivered') {
          for (const r of this.queries.deliveredBySensor(seq)) this.metrics.readingsDelivered(r.source, r.sensor, r.n);
        }
        if (outcome !== 'failed') this.drain.settled(seq);
      },
    };
  }

  /**
   * Starts the endpoint when `http` is configured. A port already taken is logged as an error
   * and the agent runs on without it: storing and delivering readings matters more.
   */
  async start(state: AgentState): Promise<void> {
    this.metrics.bindState(state);
    await this.metrics.load();
    if (!this.http) return;
    const { host, port } = splitHttpListen(this.http.listen);
    // Loaded with the endpoint: nothing of it is on the way to the first acknowledgement.
    const { HealthServer } = await import('./server.js');
    const server = new HealthServer({ host, port, limits: { maxPendingBatchAgeS: this.http.max_pending_batch_age_s } }, state, this.metrics, this.log.child({ component: 'http' }));
    try {
      const bound = await server.listen();
      this.server = server;
      this.bound = bound;
      const shown = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
      this.log.info({ listen: `${shown}:${bound.port}` }, `health, metrics and status page on http://${shown}:${bound.port}/`);
    } catch (err) {
      // A condition we can name (EADDRINUSE, EACCES, EADDRNOTAVAIL): what to do, not a stack trace.
      const { code, message } = err as NodeJS.ErrnoException;
      const hint =
        code === 'EADDRINUSE'
          ? `another program (another agent?) listens on ${this.http.listen}: stop it, or set http.listen to a free port`
          : code === 'EACCES'
            ? `this user may not listen on ${this.http.listen}: use a port above 1023`
            : code === 'EADDRNOTAVAIL'
              ? `no interface of this machine has the address of ${this.http.listen}: set http.listen to one it has (127.0.0.1)`
              : 'check http.listen';
      this.log.error({ code, error: message, listen: this.http.listen }, `health endpoint could not listen (http.listen): ${hint}; the agent runs on without it`);
    }
  }

  /** Where the endpoint listens (the port the kernel chose for port 0), when it does. */
  address(): { host: string; port: number } | undefined {
    return this.bound;
  }

  async stop(): Promise<void> {
    await this.server?.close();
  }
}
