/**
 * Where a reading's timestamp came from. The network weighs a reading's time by this:
 * a sensor's own clock, the gateway's clock known to be synchronised (NTP), or the
 * gateway's clock with no proof of synchronisation (boards without an RTC boot in 1970).
 */
export type TimeSource = 'sensor' | 'gateway-synced' | 'gateway-unsynced';

export const TIME_SOURCES: readonly TimeSource[] = ['sensor', 'gateway-synced', 'gateway-unsynced'];

/** The time source of a reading stamped by the gateway's own clock. */
export function gatewayTimeSourceOf(clockSynced: boolean): TimeSource {
  return clockSynced ? 'gateway-synced' : 'gateway-unsynced';
}

/** One numeric value of one sensor at one instant, as accepted at a source boundary. */
export interface Reading {
  /** Sensor id: SenML resolved name, or derived from the MQTT topic. 1..256 chars. */
  sensor: string;
  /** Milliseconds since the Unix epoch, integer. */
  ts: number;
  timeSource: TimeSource;
  /** Finite number. */
  value: number;
  /** SenML unit symbol (RFC 8428 §12.1), when the sensor gave one. */
  unit?: string;
  /** The sensor's own sequence number, when it provides one. */
  seq?: number;
  /** The signing stream of a reading whose sensor signs its readings (serial: device/session/sensor, PROTOCOL.md §3.9). */
  attestStream?: string;
  /** Data-quality flags set by the ingest stages (docs/wire-format.md §12.3, READING_FLAGS); absent or 0 when none. */
  flags?: number;
}

/** A reading as it sits in the store: numbered by the gateway and tagged with its source. */
export interface StoredReading extends Reading {
  /** Gateway-assigned, strictly increasing across restarts: the order the store accepted it in. */
  id: number;
  /** Id of the source instance in the config that accepted it (e.g. "mqtt"). */
  source: string;
  /** The gateway's boot counter when it accepted the reading: orders gateway-timed readings across reboots. */
  boot: number;
}
