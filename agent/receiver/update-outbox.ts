import { createHash } from 'node:crypto';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import type { BatchEvent } from '../identity/event-format.js';
import { peekUpdate, UpdateRefused } from '../identity/update-bundle.js';

/** Who a bundle is offered to: named devices, or a share of all devices chosen by a stable hash (docs/updates.md §7). */
export type Rollout = { devices: string[] } | { percent: number };

interface Published {
  id: string;
  version: string;
  kind: string;
  base64: string;
  rollout: Rollout;
  at: number;
}

/** What one device runs and what became of the bundles offered to it, from its signed events. */
export interface DeviceView {
  device: string;
  models?: string;
  config_version?: string;
  heartbeat_at?: number;
  /** Per bundle id: the device's last word on it. */
  updates: Record<string, { outcome: 'applied' | 'refused' | 'rolled_back'; version: string; reason?: string; at: number }>;
}

const MAX_PUBLISHED = 64;
const PASSING = /^(fetch-failed|shadow-inconclusive):/;
const MAX_DEVICES = 100_000;
const OUTCOMES: Record<string, 'applied' | 'refused' | 'rolled_back'> = { 'update.applied': 'applied', 'update.refused': 'refused', 'update.rolled_back': 'rolled_back' };

/** A device is in a `percent` rollout when the first 4 bytes of sha256(bundle id, 0x00, device key) as a big-endian share of 2^32 fall below it. */
export function inRollout(bundleId: string, device: string, percent: number): boolean {
  const h = createHash('sha256').update(bundleId).update(Buffer.from([0])).update(publicKeyFromDeviceId(device)).digest();
  return h.readUInt32BE(0) / 2 ** 32 < percent / 100;
}

/**
 * The reference receiver's update outbox (held in memory: publish again after a restart). It
 * offers the newest published bundle a device has not yet answered with an update.* event in
 * the `update` field of each answer to that device's batches (HTTP and MQTT alike), and keeps
 * a per-device view of what it runs from the events it is sent.
 */
export class UpdateOutbox {
  private readonly published: Published[] = [];
  private readonly views = new Map<string, DeviceView>();

  /** Checks the bundle's shape (not its signature: the devices do that) and the rollout; returns what was published. */
  publish(base64: string, rollout: Rollout, now = Date.now()): Omit<Published, 'base64'> {
    const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(base64) ? Buffer.from(base64, 'base64') : undefined;
    if (!bytes) throw new UpdateRefused('malformed', 'bundle: not base64');
    const b = peekUpdate(new Uint8Array(bytes));
    if ('devices' in rollout) {
      if (rollout.devices.length === 0 || rollout.devices.length > 10_000) throw new UpdateRefused('malformed', 'devices: give 1-10000 did:key ids');
      for (const d of rollout.devices) publicKeyFromDeviceId(d);
    } else if (!(rollout.percent > 0 && rollout.percent <= 100)) throw new UpdateRefused('malformed', 'percent: must be in (0, 100]');
    const devices = 'devices' in rollout ? { devices: rollout.devices.map((d) => deviceIdFromPublicKey(publicKeyFromDeviceId(d))) } : rollout;
    const entry: Published = { id: b.id, version: b.ver, kind: b.kind, base64, rollout: devices, at: now };
    const same = this.published.findIndex((p) => p.id === b.id);
    if (same >= 0) this.published.splice(same, 1);
    this.published.push(entry);
    if (this.published.length > MAX_PUBLISHED) this.published.shift();
    const { base64: _b, ...shown } = entry;
    return shown;
  }

  /** Notes the update and heartbeat events of a stored batch from `device`. */
  note(device: string, events: readonly BatchEvent[]): void {
    let view = this.views.get(device);
    for (const e of events) {
      const outcome = OUTCOMES[e.k];
      if (!outcome && e.k !== 'agent.heartbeat') continue;
      if (!view) {
        if (this.views.size >= MAX_DEVICES) return;
        view = { device, updates: {} };
        this.views.set(device, view);
      }
      const d = (e.d ?? {}) as Record<string, unknown>;
      if (outcome && e.s) view.updates[e.s] = { outcome, version: String(d.version ?? ''), ...(typeof d.reason === 'string' ? { reason: d.reason } : {}), at: e.t };
      else if (e.k === 'agent.heartbeat') {
        if (typeof d.models === 'string') view.models = d.models;
        if (typeof d.config_version === 'string') view.config_version = d.config_version;
        view.heartbeat_at = e.t;
      }
    }
  }

  /** The base64 bundle to add to an answer to `device`, if one waits for it. */
  offerFor(device: string): string | undefined {
    const answered = this.views.get(device)?.updates ?? {};
    for (let i = this.published.length - 1; i >= 0; i--) {
      const p = this.published[i]!;
      const word = answered[p.id];
      // A passing refusal (docs/updates.md §3) is not the device's last word: it takes the bundle when offered again later.
      if (word && !(word.outcome === 'refused' && PASSING.test(word.reason ?? ''))) continue;
      const targeted = 'devices' in p.rollout ? p.rollout.devices.includes(device) : inRollout(p.id, device, p.rollout.percent);
      if (targeted) return p.base64;
    }
    return undefined;
  }

  /** Who runs what: every device seen, and every published bundle with its rollout. */
  fleet(): { bundles: Omit<Published, 'base64'>[]; devices: DeviceView[] } {
    return { bundles: this.published.map(({ base64: _b, ...p }) => p), devices: [...this.views.values()] };
  }
}
