import { z } from 'zod';
import { publicKeyFromDeviceId } from './device-id.js';

function keyProblem(text: string): string | undefined {
  try {
    publicKeyFromDeviceId(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A did:key (or 64 hex digits) naming a usable Ed25519 public key: refused at config load, small-order keys included (wire-format.md §5). */
export const didKeySchema = z.string().refine((k) => keyProblem(k) === undefined, { error: (i) => keyProblem(String(i.input)) ?? 'not a usable public key' });
