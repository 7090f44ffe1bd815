/**
 * Changing a sensor's reporting interval at the device (issue 14 item 5): what a source that can
 * reach the device (serial, firmware-bridge/PROTOCOL.md §3.10) or the MQTT command topic
 * (agent/adaptive/README.md) offers, and how the device answered.
 */

/** How a request ended: the device's own answer, or why there was none. */
export type IntervalStatus = 'applied' | 'out_of_range' | 'unknown_sensor' | 'fixed' | 'timeout' | 'not_connected';

export interface IntervalOutcome {
  status: IntervalStatus;
  /** The period now in force at the device (its answer), when it said. */
  intervalMs?: number;
  /** The range the device accepts for this sensor, when it said. */
  minMs?: number;
  maxMs?: number;
  /** Which way the request went: `serial:<source id>` or `mqtt`. */
  via: string;
}

export interface IntervalControl {
  /** Whether this control reaches `sensor` now (serial: the connected device's HELLO lists it). */
  reaches(sensor: string): boolean;
  /**
   * The period the device says is in force now, when the way knows it (serial: the last HELLO or
   * INTERVAL_ACK); a device that rebooted declares its firmware's period again (PROTOCOL.md §3.10).
   */
  current?(sensor: string): number | undefined;
  /** Asks the device; resolves with its answer or a timeout, never rejects. */
  setInterval(sensor: string, intervalMs: number): Promise<IntervalOutcome>;
}
