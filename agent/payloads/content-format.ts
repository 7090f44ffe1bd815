import { CborLimitError, decodeBounded, type CborLimits } from '../identity/bounded-cbor.js';
import { parsePayload, type ParseContext, type ParseResult } from './parse.js';
import { MAX_PACK_RECORDS } from './types.js';
import { parseSenmlPack } from './senml.js';

/** CoAP Content-Format ids we accept (IANA CoAP Content-Formats registry; RFC 8428 §12.3). */
export const CONTENT_FORMAT = { textPlain: 0, json: 50, senmlJson: 110, senmlCbor: 112 } as const;
export const ACCEPTED_CONTENT_FORMATS: readonly number[] = Object.values(CONTENT_FORMAT);

// RFC 8428 §6, Table 6: SenML CBOR uses integer labels for the standard fields.
const CBOR_LABELS = new Map<number, string>([
  [-1, 'bver'], [-2, 'bn'], [-3, 'bt'], [-4, 'bu'], [-5, 'bv'], [-6, 'bs'],
  [0, 'n'], [1, 'u'], [2, 'v'], [3, 'vs'], [4, 'vb'], [5, 's'], [6, 't'], [7, 'ut'], [8, 'vd'],
]);

function reject(reason: string): ParseResult {
  return { readings: [], rejections: [{ reason }] };
}

/** A pack is an array of records, each a map of scalars (RFC 8428 §6): limits checked while decoding, before anything is built. */
const SENML_CBOR_LIMITS: CborLimits = {
  maxBytes: 16 * 1024 * 1024,
  maxDepth: 2,
  maxTextBytes: 4096,
  maxByteStringBytes: 64 * 1024,
  maxLength: 64,
  lengthByPath: { '': MAX_PACK_RECORDS },
  maxItems: MAX_PACK_RECORDS * 16,
  deterministic: false,
};

/** SenML CBOR (RFC 8428 §6): an array of maps keyed by the integer labels (or text, for extensions). */
export function parseSenmlCbor(payload: Uint8Array, ctx: ParseContext): ParseResult {
  let value: unknown;
  try {
    value = decodeBounded(payload, SENML_CBOR_LIMITS).value;
  } catch (err) {
    if (!(err instanceof CborLimitError)) throw err;
    return reject(`not valid CBOR, or beyond the limits of a SenML pack (${err.message})`);
  }
  if (!Array.isArray(value)) return reject('SenML CBOR pack is not an array');
  const pack = value.map((rec) => {
    if (!(rec instanceof Map)) return rec; // parseSenmlPack rejects it with its index
    const out: Record<string, unknown> = {};
    for (const [k, v] of rec) {
      const label = typeof k === 'number' ? CBOR_LABELS.get(k) : typeof k === 'string' ? k : undefined;
      // An unknown integer label cannot be understood; flag it the way §4.4 treats '_' labels.
      out[label ?? `unknown-label-${String(k).slice(0, 16)}_`] = v instanceof Uint8Array ? '(bytes)' : v;
    }
    return out;
  });
  return parseSenmlPack(pack, ctx);
}

/**
 * Parses a payload whose CoAP Content-Format says what it is. Undefined: no option given,
 * the format is sniffed as for MQTT. Returns undefined for a format we do not accept (4.15).
 */
export function parseByContentFormat(format: number | undefined, payload: Uint8Array, ctx: ParseContext): ParseResult | undefined {
  switch (format) {
    case undefined:
    case CONTENT_FORMAT.textPlain:
    case CONTENT_FORMAT.json:
      return parsePayload(payload, ctx);
    case CONTENT_FORMAT.senmlJson: {
      const first = payload.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
      if (first !== 0x5b) return reject('SenML JSON must be a JSON array (RFC 8428 §5)');
      return parsePayload(payload, ctx);
    }
    case CONTENT_FORMAT.senmlCbor:
      return parseSenmlCbor(payload, ctx);
    default:
      return undefined;
  }
}
