import type { IClientOptions } from 'mqtt';
import type { IntervalControl } from '../contracts/interval-control.js';
import type { AgentEventInput } from '../identity/event-format.js';
import type { StoredVerdict } from '../identity/verdict-format.js';
import type { Logger } from '../log.js';
import type { Reading } from '../types.js';
import type { AdaptiveConfig, PolicyRule } from './config.js';
import { IntervalController } from './interval-controller.js';
import type { MqttCommands } from './mqtt-commands.js';
import type { HeldReadings } from '../store/held-readings.js';
import { SummaryMode } from './summary-mode.js';

/** A source that can also reach its devices' reporting interval (the serial source, PROTOCOL.md §3.10). */
export function isIntervalControl(x: unknown): x is IntervalControl {
  return typeof (x as IntervalControl).setInterval === 'function' && typeof (x as IntervalControl).reaches === 'function';
}

/**
 * The adaptive-reporting side of a run (agent/adaptive/README.md), built from `adaptive:`: the
 * policy's controller and the MQTT command topic. The run feeds it committed readings and alert
 * changes; it reaches devices through the sources' IntervalControl and the command topic.
 */
export class AdaptiveReporting {
  private constructor(
    private controller: IntervalController | undefined,
    private readonly commands: MqttCommands | undefined,
    readonly summary: SummaryMode | undefined,
    private readonly activeAlerts: () => readonly { series: string; model: string; since: number }[],
    /** Builds a controller for a policy (also one first given by a reload). */
    private readonly controllerFor: (rules: readonly PolicyRule[], retryMs: number) => IntervalController,
  ) {}

  static async create(
    cfg: AdaptiveConfig,
    deps: {
      sources: readonly unknown[];
      events: { record(e: AgentEventInput): number };
      broker?: () => { url: string; clientId: string; connect: Partial<IClientOptions> };
      /** Summary mode: the kept readings, and where the store asks which readings to keep. */
      held?: HeldReadings;
      holdWhen?: (hold: (sensor: string) => boolean) => void;
      /** Alerts raised before this run and not cleared (the store's last alert change per series and model). */
      activeAlerts?: () => readonly { series: string; model: string; since: number }[];
      log: Logger;
    },
  ): Promise<AdaptiveReporting> {
    let commands: MqttCommands | undefined;
    if (cfg.commands && deps.broker) {
      const { MqttCommands } = await import('./mqtt-commands.js');
      commands = new MqttCommands(cfg.commands, deps.broker(), deps.log.child({ part: 'commands' }));
    }
    const controls: IntervalControl[] = [...deps.sources.filter(isIntervalControl), ...(commands ? [commands] : [])];
    const controllerFor = (rules: readonly PolicyRule[], retryMs: number) => new IntervalController({ rules, controls, events: deps.events, retryMs, log: deps.log });
    const controller = cfg.policy ? controllerFor(cfg.policy, cfg.retry_s * 1000) : undefined;
    let summary: SummaryMode | undefined;
    if (cfg.summary && deps.held && deps.holdWhen) {
      const mode = new SummaryMode(cfg.summary, deps.held, deps.log.child({ part: 'summary' }));
      deps.holdWhen((sensor) => mode.hold(sensor));
      summary = mode;
    }
    return new AdaptiveReporting(controller, commands, summary, deps.activeAlerts ?? (() => []), controllerFor);
  }

  async start(): Promise<void> {
    await this.commands?.start();
    // An alert raised before a restart is still raised: fast interval and full rate from the start.
    for (const a of this.activeAlerts()) this.noteAlert({ key: a.series, modelId: a.model, alert: true, ts: a.since });
    this.controller?.start();
    this.summary?.start();
  }

  /**
   * SIGHUP with a changed `adaptive.policy` or `retry_s` (agent/run/config-reload.ts): the running
   * controller takes the new rules and judges its sensors again; a policy added where there was
   * none starts one, with the alerts raised now. Without a policy nothing is steered any more
   * (each sensor keeps the interval it has).
   */
  setPolicy(cfg: Pick<AdaptiveConfig, 'policy' | 'retry_s'>): void {
    const rules = cfg.policy ?? [];
    if (this.controller) return this.controller.setPolicy(rules, cfg.retry_s * 1000);
    if (rules.length === 0) return;
    this.controller = this.controllerFor(rules, cfg.retry_s * 1000);
    for (const a of this.activeAlerts()) this.controller.noteAlert({ key: a.series, modelId: a.model, alert: true });
    this.controller.start();
  }

  ready(): Promise<void> {
    return this.commands?.ready() ?? Promise.resolve();
  }

  noteReadings(readings: readonly Reading[]): void {
    if (!this.controller || readings.length === 0) return;
    this.controller.noteSensors(new Set(readings.map((r) => r.sensor)));
  }

  noteAlert(v: Pick<StoredVerdict, 'key' | 'modelId' | 'alert' | 'ts'>): void {
    this.summary?.noteAlert(v);
    this.controller?.noteAlert(v);
  }

  snapshot(): Record<string, unknown> {
    return { intervals: this.controller?.snapshot() ?? {}, requests: this.controller?.stats ?? {}, ...(this.commands ? { mqtt: this.commands.stats } : {}), ...(this.summary ? { summary: this.summary.snapshot() } : {}) };
  }

  async stop(): Promise<void> {
    this.controller?.stop();
    this.summary?.stop();
    await this.commands?.stop();
  }
}
