import type { Logger } from '../log.js';
import type { EventStore } from '../store/event-store.js';

/** What a heartbeat says about the gateway (docs/wire-format.md §12.5, kind agent.heartbeat). */
export interface HeartbeatFacts {
  uptimeS: number;
  boot: number;
  clockSynced: boolean;
  storeBytes: number;
  /** Age of the oldest batch waiting for the uplink, ms; 0 when none waits. */
  oldestPendingMs: number;
  /** sha256 prefix of the config file in force. */
  configVersion: string;
  /** The models in use, `id@sha256-prefix`, comma-separated (cut to the event's 256 units). */
  models: string;
}

/**
 * Signed heartbeats: every `intervalMs`, even when no reading arrives, an `agent.heartbeat` event
 * goes into the chain, so the network can compute a device's availability from signed facts
 * (receiver GET /v1/devices/DID/availability). One is recorded at start; a clean stop records
 * `agent.stop`, so planned downtime is told apart from a crash or a cut link.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private running = false;

  constructor(
    private readonly events: EventStore,
    private intervalMs: number,
    private readonly facts: () => HeartbeatFacts,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.running = true;
    if (this.intervalMs <= 0) return;
    this.beat('start');
    this.schedule();
  }

  private schedule(): void {
    this.timer = setInterval(() => this.beat('interval'), this.intervalMs);
    this.timer.unref();
  }

  /** heartbeat.interval_s changed by a config reload: the next beat comes one new interval from now (0 stops them). */
  setIntervalMs(ms: number): void {
    const wasOff = this.intervalMs <= 0;
    this.intervalMs = ms;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (!this.running || ms <= 0) return;
    // Turned on while running: a first beat now says the device is alive, as at start.
    if (wasOff) this.beat('start');
    this.schedule();
  }

  stop(): void {
    const wasRunning = this.running;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (wasRunning && this.intervalMs > 0) this.record('agent.stop', { reason: 'stop', uptime_s: this.facts().uptimeS });
  }

  private beat(why: 'start' | 'interval'): void {
    const f = this.facts();
    this.record('agent.heartbeat', {
      why,
      interval_s: Math.round(this.intervalMs / 1000),
      uptime_s: f.uptimeS,
      boot: f.boot,
      clock_synced: f.clockSynced,
      store_bytes: f.storeBytes,
      oldest_pending_ms: f.oldestPendingMs,
      config_version: f.configVersion,
      models: f.models.length > 256 ? `${f.models.slice(0, 253)}...` : f.models,
    });
  }

  private record(kind: string, detail: Record<string, string | number | boolean>): void {
    try {
      this.events.record({ kind, key: '', detail });
      if (this.failures > 0) this.log.info({ failed: this.failures }, 'heartbeats recorded again');
      this.failures = 0;
    } catch (err) {
      // A full disk must not stop the agent; say it once per episode, not once per beat.
      if (this.failures++ === 0) this.log.warn({ err }, 'could not record a heartbeat; will keep trying');
    }
  }
}
