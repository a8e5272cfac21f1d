// The API key itself (docs/apikey.md): its format "<prefix>_<keyid>_<body><checksum>"
// with the CRC32 checksum checked before any lookup, its redacted form, the
// error every refusal is (ApiKeyError and its codes), the hashes a verifier
// record keeps (sha256, hmac-sha256 under the pepper), the pepper's public
// fingerprint and the owner id of a caller secret.

import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const KEY_ID_LEN = 12;
export const BODY_LEN = 32;
export const CHECKSUM_LEN = 6;
export const MIN_PREFIX_LEN = 2;
export const MAX_PREFIX_LEN = 16;
/** The longest key accepted; anything longer is refused before parsing. */
export const MAX_KEY_LEN = MAX_PREFIX_LEN + 1 + KEY_ID_LEN + 1 + BODY_LEN + CHECKSUM_LEN;
export const MIN_PEPPER_LEN = 32;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Why a key or signature was refused; the codes match pkg/apikey's Err values. */
export type ApiKeyCode =
  | 'oversized' | 'malformed' | 'checksum' | 'wrong-prefix' | 'unknown-key' | 'mismatch'
  | 'revoked' | 'expired' | 'not-yet-valid' | 'no-keyring' | 'bad-signature' | 'stale';

const messages: Record<ApiKeyCode, string> = {
  'oversized': 'key too long',
  'malformed': 'malformed key',
  'checksum': 'key checksum mismatch',
  'wrong-prefix': 'key has a prefix this service does not accept',
  'unknown-key': 'unknown key id',
  'mismatch': 'key does not match its record',
  'revoked': 'key revoked',
  'expired': 'key expired',
  'not-yet-valid': 'key not yet valid',
  'no-keyring': 'no verifier records loaded',
  'bad-signature': 'webhook signature does not verify',
  'stale': 'webhook timestamp outside the tolerance',
};

/** A refused key or signature. keyId is set when the key parsed (it is public). It never holds the key. */
export class ApiKeyError extends Error {
  override name = 'ApiKeyError';
  constructor(readonly code: ApiKeyCode, readonly keyId?: string) {
    super('apikey: ' + messages[code]);
  }
}

export function validPrefix(p: string): boolean {
  return p.length >= MIN_PREFIX_LEN && p.length <= MAX_PREFIX_LEN && /^[a-z][a-z0-9]*$/.test(p);
}

export const isBase62 = (s: string) => /^[0-9A-Za-z]*$/.test(s);

/** The 6-character base62 checksum of the key text before it (CRC32 IEEE, most significant digit first). */
export function checksum(text: string): string {
  let x = crc32(Buffer.from(text, 'latin1'));
  let out = '';
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    out = BASE62[x % 62] + out;
    x = Math.floor(x / 62);
  }
  return out;
}

export interface ParsedKey { prefix: string; keyId: string }

/** Checks format and checksum without any lookup. Throws ApiKeyError oversized / malformed / checksum. */
export function parseKey(s: string): ParsedKey {
  // Bounded in UTF-8 bytes, as Go measures it, before anything else.
  if (s.length > MAX_KEY_LEN || Buffer.byteLength(s, 'utf8') > MAX_KEY_LEN) throw new ApiKeyError('oversized');
  // Only ASCII keys can be well-formed; this also makes length in bytes = length in characters.
  if (!/^[\x21-\x7e]*$/.test(s)) throw new ApiKeyError('malformed');
  const i = s.indexOf('_');
  if (i < MIN_PREFIX_LEN || i > MAX_PREFIX_LEN || !validPrefix(s.slice(0, i))) throw new ApiKeyError('malformed');
  const rest = s.slice(i + 1);
  if (rest.length !== KEY_ID_LEN + 1 + BODY_LEN + CHECKSUM_LEN || rest[KEY_ID_LEN] !== '_') throw new ApiKeyError('malformed');
  if (!isBase62(rest.slice(0, KEY_ID_LEN)) || !isBase62(rest.slice(KEY_ID_LEN + 1))) throw new ApiKeyError('malformed');
  const n = s.length - CHECKSUM_LEN;
  if (checksum(s.slice(0, n)) !== s.slice(n)) throw new ApiKeyError('checksum');
  return { prefix: s.slice(0, i), keyId: rest.slice(0, KEY_ID_LEN) };
}

/** The printable form of a key: "<prefix>_<keyid>_[REDACTED]". */
export function redactKey(s: string): string {
  try {
    const p = parseKey(s);
    return `${p.prefix}_${p.keyId}_[REDACTED]`;
  } catch {
    return '[REDACTED]';
  }
}

export type HashAlg = 'sha256' | 'hmac-sha256';
export type Status = 'active' | 'retiring' | 'revoked';
export type Kind = 'apikey' | 'webhook';

/** The verifier hash of key: SHA-256 of the key, or HMAC-SHA-256 of it under the pepper. */
export function hashKey(alg: HashAlg, pepper: Uint8Array | undefined, key: string): Buffer {
  if (alg === 'sha256') return createHash('sha256').update(key, 'utf8').digest();
  if (!pepper || pepper.length < MIN_PEPPER_LEN) throw new Error(`apikey: pepper shorter than ${MIN_PEPPER_LEN} bytes`);
  return createHmac('sha256', pepper).update(key, 'utf8').digest();
}

/** The public identifier of a pepper (an HMAC of a fixed label). */
export function pepperFingerprint(pepper: Uint8Array): string {
  return createHmac('sha256', pepper).update('apikey pepper fingerprint v1').digest().subarray(0, 12).toString('base64url');
}

/** The owner id of a caller secret's ARN ("o" + 16 base64url characters of SHA-256). */
export function ownerId(secretArn: string): string {
  return 'o' + createHash('sha256').update('apikey owner v1\x00' + secretArn, 'utf8').digest().subarray(0, 12).toString('base64url');
}
