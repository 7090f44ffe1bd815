import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AgentError, errorMessage } from '../errors.js';
import type { BatchDataV3 } from '../identity/batch-v3.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { decodeAttestationMessage } from '../identity/sensor-attestation.js';

/**
 * The network side's list of provisioned sensor keys (`edge-agent receive --sensor-keys FILE`,
 * docs/wire-format.md §12.7, §12.9 step 11): device did:key → board uid → the board's Ed25519
 * public key. Without it an attestation proves only that *some* key signed the readings, which a
 * gateway that altered a value and re-signed the run with a key of its own also achieves; with it,
 * an attestation under a key not registered for that device and board refuses the batch
 * (`unknown-sensor-key`). `edge-agent sensor-key export` on the gateway prints the entries to add.
 */

/** A registry for a whole network still fits easily; a larger file is a mistake, not a fleet. */
export const MAX_REGISTRY_FILE_BYTES = 4 * 1024 * 1024;
export const MAX_REGISTRY_DEVICES = 100_000;
export const MAX_BOARDS_PER_DEVICE = 256;

const UID = /^[0-9a-f]{16}$/;
const PUBLIC_KEY = /^[0-9a-f]{64}$/;

export class SensorKeyRegistry {
  private constructor(
    /** Canonical did:key → board uid (hex) → public key (hex). */
    private readonly keys: ReadonlyMap<string, ReadonlyMap<string, string>>,
  ) {}

  get deviceCount(): number {
    return this.keys.size;
  }

  /** Loads and validates FILE (YAML or JSON); every problem names the file and the key. */
  static load(path: string): SensorKeyRegistry {
    const usage = (detail: string) => new AgentError('USAGE', `--sensor-keys ${path}: ${detail}`);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (err) {
      throw usage(`cannot read it: ${errorMessage(err)}`);
    }
    if (size > MAX_REGISTRY_FILE_BYTES) throw usage(`${size} bytes, more than the ${MAX_REGISTRY_FILE_BYTES} a sensor key registry may have`);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, 'utf8'), { maxAliasCount: 0 });
    } catch (err) {
      throw usage(`not YAML or JSON: ${errorMessage(err)}`);
    }
    return SensorKeyRegistry.fromObject(doc ?? {}, usage);
  }

  static fromObject(doc: unknown, usage: (detail: string) => Error = (d) => new AgentError('USAGE', d)): SensorKeyRegistry {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw usage('expected a map of device did:key → {board uid: sensor public key}');
    const entries = Object.entries(doc);
    if (entries.length > MAX_REGISTRY_DEVICES) throw usage(`${entries.length} devices, more than ${MAX_REGISTRY_DEVICES}`);
    const keys = new Map<string, Map<string, string>>();
    for (const [did, boards] of entries) {
      let device: string;
      try {
        device = deviceIdFromPublicKey(publicKeyFromDeviceId(did));
      } catch (err) {
        throw usage(`key "${did.slice(0, 80)}": ${errorMessage(err)} (the gateway's device id, as \`edge-agent status\` shows it)`);
      }
      if (keys.has(device)) throw usage(`device ${device} is listed twice`);
      if (typeof boards !== 'object' || boards === null || Array.isArray(boards)) throw usage(`key "${did}": expected a map of board uid → sensor public key`);
      const byBoard = new Map<string, string>();
      const list = Object.entries(boards as Record<string, unknown>);
      if (list.length > MAX_BOARDS_PER_DEVICE) throw usage(`key "${did}": ${list.length} boards, more than ${MAX_BOARDS_PER_DEVICE}`);
      for (const [uid, key] of list) {
        const where = `key "${did}" → "${uid.slice(0, 40)}"`;
        if (!UID.test(uid.toLowerCase())) throw usage(`${where}: a board uid is 16 hex digits, as its HELLO sends it`);
        if (typeof key !== 'string' || !PUBLIC_KEY.test(key.toLowerCase())) throw usage(`${where}: a sensor public key is 64 hex digits (\`edge-agent sensor-key list\` on the gateway)`);
        byBoard.set(uid.toLowerCase(), key.toLowerCase());
      }
      keys.set(device, byBoard);
    }
    return new SensorKeyRegistry(keys);
  }

  /**
   * Why the batch of `device` carries an attestation under a key the network did not provision,
   * or undefined when every attestation's key is registered for that device and the board its
   * message names (firmware bridge, PROTOCOL.md §3.9); a message of another layout names no
   * board, so its key must be one registered for the device.
   */
  refusal(device: string, data: BatchDataV3): string | undefined {
    const boards = this.keys.get(device);
    for (const [k, att] of (data.att ?? []).entries()) {
      const key = Buffer.from(att.k).toString('hex');
      const uid = decodeAttestationMessage(att.msg)?.uid;
      const board = uid && Buffer.from(uid).toString('hex');
      const where = `attestation ${k + 1} (sensor key ${key.slice(0, 16)}…${board ? `, board ${board}` : ''})`;
      if (!boards) return `${where}: device ${device} has no sensor keys in the registry; add its entries (\`edge-agent sensor-key export\` on the gateway) or the readings' origin cannot be trusted`;
      const registered = board ? boards.get(board) : [...boards.values()].find((v) => v === key);
      if (registered === undefined) return `${where}: no key is registered for this board of device ${device}`;
      if (registered !== key) return `${where}: not the key registered for this board (${registered.slice(0, 16)}…); the readings were signed by someone else, e.g. a gateway that re-signed them`;
    }
    return undefined;
  }
}
