// The envelope's text form ("env1:" / "env2:" + unpadded base64url): the
// prefix test that tells an envelope from plaintext, and strict encoding and
// decoding.

import { err, MAX_BLOB_V2 } from './format.js';

const MAX_TEXT = 5 + Math.ceil((MAX_BLOB_V2 * 4) / 3);

/** The length of an envelope text prefix ("env", 1–9 ASCII digits, ":", as pkg/envelope bounds it) at the start of s, or 0. */
function prefixLen(s: string): number {
  const m = /^env([0-9]{1,9}):/.exec(s);
  return m ? m[0].length : 0;
}

/**
 * Whether s starts like the text form of some envelope version. A value with the prefix is always treated as
 * an envelope — a damaged ciphertext is never mistaken for plaintext.
 */
export function hasEnvelopePrefix(s: string): boolean {
  return prefixLen(s) > 0;
}

/** The text form: "env1:" or "env2:" (by the blob's version) + unpadded base64url of the blob. */
export function encodeText(blob: Uint8Array): string {
  if (blob.length < 1 || (blob[0] !== 1 && blob[0] !== 2)) throw err('unsupported-version', 'encode-text', `version ${blob[0]}`);
  return `env${blob[0]}:` + Buffer.from(blob).toString('base64url');
}

/**
 * Decodes the text form strictly: prefix, length, alphabet, canonical base64url, and the blob's version byte
 * equal to the prefix's. A value without any envelope prefix fails with kind malformed and notEnvelope set:
 * it was never an envelope (legacy plaintext, say). Every other failure means a damaged envelope.
 */
export function decodeText(text: string): Buffer {
  const op = 'decode-text';
  const n = prefixLen(text);
  if (n === 0) {
    const e = err('malformed', op, 'text has no envelope prefix (env2: or env1:)');
    e.notEnvelope = true;
    throw e;
  }
  const prefix = text.slice(0, n);
  if (prefix !== 'env1:' && prefix !== 'env2:') throw err('unsupported-version', op, `text prefix ${prefix}`);
  if (text.length > MAX_TEXT) throw err('malformed', op, 'longer than any well-formed blob');
  const body = text.slice(n);
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) throw err('malformed', op, 'not unpadded base64url');
  const b = Buffer.from(body, 'base64url');
  if (b.toString('base64url') !== body) throw err('malformed', op, 'not canonical base64url');
  if (b.length === 0 || String(b[0]) !== prefix[3]) throw err('malformed', op, "the blob's version is not its prefix's");
  return b;
}
