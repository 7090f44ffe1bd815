import type { ReceiverStats } from './receiver-types.js';

/** The attestation part of /v1/stats, the same for both backends. */
export function attestationStats(readings: number, attested: number, byReason: Record<string, number>): Pick<ReceiverStats, 'attested_readings' | 'unattested_readings' | 'refused_attestations'> {
  return {
    attested_readings: attested,
    unattested_readings: Math.max(0, readings - attested),
    refused_attestations: (byReason['bad-attestation'] ?? 0) + (byReason['unknown-sensor-key'] ?? 0),
  };
}
