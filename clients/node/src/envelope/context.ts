// The encryption context's canonical encoding (docs/envelope-format.md §2):
// encoding a context, decoding one strictly, and whether two encoded
// contexts share a key (the v2 stable and message contexts may not).

import { err, MAX_CONTEXT, type EncryptionContext } from './format.js';

function validUTF8(s: string): boolean {
  return Buffer.from(s, 'utf8').toString('utf8') === s;
}

/** The canonical encoding of a context (§2): sorted by key bytes, unique, UTF-8, at most 8192 bytes. */
export function canonicalContext(ec: EncryptionContext | undefined | null, op = 'encrypt'): Buffer {
  const pairs = Object.entries(ec ?? {}).map(([k, v]) => {
    if (typeof v !== 'string') throw err('malformed', op, 'context values must be strings');
    if (k === '' || !validUTF8(k) || !validUTF8(v)) throw err('malformed', op, 'context keys must be non-empty UTF-8 and values UTF-8');
    return [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const;
  });
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  let size = 2;
  for (const [k, v] of pairs) size += 4 + k.length + v.length;
  if (size > MAX_CONTEXT || pairs.length > 0xffff) throw err('malformed', op, `the canonical context is ${size} bytes, more than ${MAX_CONTEXT}`);
  const out = Buffer.alloc(size);
  let o = out.writeUInt16BE(pairs.length, 0);
  for (const [k, v] of pairs) {
    if (k.length > 0xffff || v.length > 0xffff) throw err('malformed', op, 'a context key or value is too long');
    o = out.writeUInt16BE(k.length, o);
    o += k.copy(out, o);
    o = out.writeUInt16BE(v.length, o);
    o += v.copy(out, o);
  }
  for (let i = 1; i < pairs.length; i++) if (Buffer.compare(pairs[i - 1][0], pairs[i][0]) === 0) throw err('malformed', op, 'duplicate context key');
  return out;
}

/** Decodes a canonical context, refusing any encoding a writer would not produce. */
export function parseCanonicalContext(b: Uint8Array, op = 'parse'): Record<string, string> {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const bad = () => err('malformed', op, 'the context is not canonical');
  if (buf.length < 2) throw bad();
  const n = buf.readUInt16BE(0);
  let o = 2;
  const out: Record<string, string> = {};
  let prev: Buffer | undefined;
  const dec = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < n; i++) {
    if (o + 2 > buf.length) throw bad();
    const kl = buf.readUInt16BE(o);
    o += 2;
    if (kl === 0 || o + kl + 2 > buf.length) throw bad();
    const k = buf.subarray(o, o + kl);
    o += kl;
    const vl = buf.readUInt16BE(o);
    o += 2;
    if (o + vl > buf.length) throw bad();
    const v = buf.subarray(o, o + vl);
    o += vl;
    if (prev && Buffer.compare(prev, k) >= 0) throw bad();
    prev = k;
    try {
      out[dec.decode(k)] = dec.decode(v);
    } catch {
      throw bad();
    }
  }
  if (o !== buf.length) throw bad();
  return out;
}

/** Keys present in both canonical contexts (both sorted). */
export function sharesKey(a: Buffer, b: Buffer): boolean {
  const keys = (c: Buffer) => {
    const out = new Set<string>();
    const n = c.readUInt16BE(0);
    let o = 2;
    for (let i = 0; i < n; i++) {
      const kl = c.readUInt16BE(o);
      out.add(c.subarray(o + 2, o + 2 + kl).toString('hex'));
      o += 2 + kl;
      o += 2 + c.readUInt16BE(o);
    }
    return out;
  };
  const ka = keys(a);
  for (const k of keys(b)) if (ka.has(k)) return true;
  return false;
}
