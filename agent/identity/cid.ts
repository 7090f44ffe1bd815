import { CID } from 'multiformats/cid';
import { create as createDigest } from 'multiformats/hashes/digest';
import { sha256 } from './merkle.js';

/** multicodec `raw` and multihash `sha2-256` (the multiformats tables). */
const RAW_CODEC = 0x55;
const SHA2_256 = 0x12;

/**
 * The content identifier of a batch (docs/wire-format.md §12.11): CIDv1, raw codec, sha2-256 of
 * the envelope bytes, base32 (`bafkrei…`), as multiformats and every IPFS node compute it.
 */
export function batchCid(envelope: Uint8Array): CID {
  return CID.create(1, RAW_CODEC, createDigest(SHA2_256, sha256(envelope)));
}

export function batchCidText(envelope: Uint8Array): string {
  return batchCid(envelope).toString();
}
