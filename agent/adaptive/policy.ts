import { topicMatches } from '../util/topic-filter.js';
import type { PolicyRule } from './config.js';

export interface Target {
  intervalMs: number;
  /** Why: `healthy`, or `alert` with the series and model that made it fast. */
  reason: 'healthy' | 'alert';
  alert?: { series: string; model: string };
}

/** Alerts raised now, by series key, with the models that raised them. */
export type ActiveAlerts = ReadonlyMap<string, ReadonlySet<string>>;

/** The first rule whose `sensors` match (agent/adaptive/README.md): rules are tried in order. */
export function ruleFor(rules: readonly PolicyRule[], sensor: string): PolicyRule | undefined {
  return rules.find((r) => r.sensors.some((f) => topicMatches(f, sensor)));
}

/** The interval `sensor` should report at, given the alerts raised now; undefined when no rule names it. */
export function targetFor(rules: readonly PolicyRule[], sensor: string, alerts: ActiveAlerts): Target | undefined {
  const rule = ruleFor(rules, sensor);
  if (!rule) return undefined;
  for (const [series, models] of alerts) {
    const related = rule.alert_on ? rule.alert_on.some((f) => topicMatches(f, series)) : series === sensor;
    if (!related) continue;
    const model = [...models].find((m) => !rule.models || rule.models.includes(m));
    if (model !== undefined) return { intervalMs: rule.alert_interval_ms, reason: 'alert', alert: { series, model } };
  }
  return { intervalMs: rule.healthy_interval_ms, reason: 'healthy' };
}
