// Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999), PROTOCOL.md §2.1.

/** Encodes `data` so that it holds no 0x00 byte (the frame delimiter is not appended). */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + Math.ceil(data.length / 254) + 1);
  let codeAt = 0;
  let o = 1;
  let code = 1;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    } else {
      out[o++] = b;
      if (++code === 0xff) {
        out[codeAt] = code;
        // A full block that ends the input gets no further code byte (FF 01..FE, not FF 01..FE 01).
        if (i === data.length - 1) return out.subarray(0, o);
        codeAt = o++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out.subarray(0, o);
}

/** Decodes one COBS block (without its delimiter); undefined when it is not valid COBS. */
export function cobsDecode(enc: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(enc.length);
  let o = 0;
  let i = 0;
  while (i < enc.length) {
    const code = enc[i]!;
    if (code === 0 || i + code > enc.length) return undefined; // a block may not run past the end
    for (let k = 1; k < code; k++) {
      const b = enc[i + k]!;
      if (b === 0) return undefined;
      out[o++] = b;
    }
    i += code;
    if (code !== 0xff && i < enc.length) out[o++] = 0;
  }
  return out.subarray(0, o);
}
