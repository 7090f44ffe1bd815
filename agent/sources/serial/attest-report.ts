import type { AttestationOutcome } from '../../contracts/reading-sink.js';
import type { SourceContext } from '../source.js';
import type { DeviceSession, Segment } from './segment.js';

/** The device's provisioned sensor key (config `attest_keys`, PROTOCOL.md §3.9), as DeviceSession fields. */
export function provisionedKey(keys: Readonly<Record<string, string>>, uid: string): { key?: Uint8Array } {
  const hex = keys[uid];
  return hex ? { key: Uint8Array.from(Buffer.from(hex, 'hex')) } : {};
}

const EVENT_OF: Partial<Record<AttestationOutcome | 'unprovisioned', string>> = {
  unprovisioned: 'serial.attest_unprovisioned',
  'bad-signature': 'serial.attest_bad',
};

const ADVICE: Record<AttestationOutcome | 'unprovisioned', string> = {
  stored: '',
  duplicate: '',
  incomplete: 'an ATTEST names readings the store does not hold unbatched (a hole the device will resend, or they were batched before it arrived): those readings go unattested',
  'bad-signature':
    "the board's signature does not verify under the key provisioned for this device over the readings committed: the board holds another key (run edge-agent sensor-key generate again and flash it) or the readings were altered between board and store",
  full: 'the store holds the most attestations a batch can carry waiting for a batch: is the uplink down?',
  unprovisioned: 'the device signs its readings (ATTEST) but no sensor key is provisioned for it: register its public key with edge-agent sensor-key register (sources.ID.attest_keys); until then its readings go unattested',
};

/**
 * What the serial source says about sensor attestations (PROTOCOL.md §3.9): counters for its
 * health, a log line per device and reason at most once a minute, and an event for the network
 * once per session when a board is unprovisioned or its signatures fail (flagged upstream, as the
 * batch itself never carries a bad attestation).
 */
export class AttestReport {
  readonly counters = { attest_stored: 0, attest_duplicate: 0, attest_incomplete: 0, attest_bad_signature: 0, attest_unprovisioned: 0, attest_full: 0 };
  private readonly lastLog = new Map<string, number>();
  private readonly flagged = new Set<string>();

  outcomes(ctx: SourceContext, path: string, dev: DeviceSession, seg: Segment, outcomes: readonly AttestationOutcome[]): void {
    const all: (AttestationOutcome | 'unprovisioned')[] = [...outcomes, ...Array<'unprovisioned'>(seg.unprovisioned).fill('unprovisioned')];
    all.forEach((o, k) => {
      this.counters[`attest_${o.replace('-', '_')}` as keyof typeof this.counters]++;
      if (o === 'stored' || o === 'duplicate') return;
      const claim = seg.attestations[k];
      const where = { path, device: dev.uid, session: dev.session, ...(claim ? { sensor: claim.sensor, first_seq: claim.firstSeq, last_seq: claim.lastSeq } : {}) };
      const logKey = `${dev.uid}/${o}`;
      const now = Date.now();
      if (now - (this.lastLog.get(logKey) ?? 0) > 60_000) {
        this.lastLog.set(logKey, now);
        ctx.log[o === 'incomplete' ? 'info' : 'warn'](where, `sensor attestation ${o}: ${ADVICE[o]}`);
      }
      const kind = EVENT_OF[o];
      const flagKey = `${dev.uid}/${dev.session}/${o}`;
      if (kind && !this.flagged.has(flagKey)) {
        this.flagged.add(flagKey);
        if (this.flagged.size > 1024) this.flagged.clear();
        try {
          ctx.events?.record({ kind, key: ctx.id, detail: { device: dev.uid, session: dev.session, ...(claim ? { sensor: claim.sensor } : {}) } });
        } catch (err) {
          ctx.log.warn({ err, kind }, 'could not store an event for the network');
        }
      }
    });
  }
}
