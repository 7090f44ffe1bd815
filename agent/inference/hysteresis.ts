/** Alert thresholds with hysteresis (agent/inference/README.md §6). */
export interface AlertRule {
  direction: 'above' | 'below';
  on: number;
  off: number;
  on_count: number;
  off_count: number;
  /** What clearing is judged on, when not the value that raises (e.g. raise on "score", clear on "surprise"). */
  clear_output?: string | undefined;
}

export interface AlertState {
  alert: boolean;
  streak: number;
}

/**
 * Raises after `on_count` consecutive values past `on`, clears after `off_count` consecutive
 * values back past `off`, so one noisy reading neither raises nor clears an alert. With
 * `clearValue` (rule.clear_output), clearing is judged on that value instead.
 */
export function stepAlert(rule: AlertRule, state: AlertState, value: number, clearValue: number = value): { alert: boolean; changed: boolean } {
  const above = rule.direction === 'above';
  const towardAlert = state.alert
    ? above
      ? clearValue < rule.off
      : clearValue > rule.off
    : above
      ? value >= rule.on
      : value <= rule.on;
  state.streak = towardAlert ? state.streak + 1 : 0;
  if (state.streak >= (state.alert ? rule.off_count : rule.on_count)) {
    state.alert = !state.alert;
    state.streak = 0;
    return { alert: state.alert, changed: true };
  }
  return { alert: state.alert, changed: false };
}
