// Key derivation from a data key: version 1's HKDF-SHA-512 extract and
// per-message expand, version 2's keys derived once per data key with the
// key section's tag, the Material an Envelope caches, and the sealing of one
// version-2 blob. The cache and the calls to the provider are in envelope.ts.

import { createCipheriv, createHmac, hkdfSync } from 'node:crypto';
import { err, MAX_MESSAGES_PER_DATA_KEY, NONCE_SIZE, TAG_SIZE } from './format.js';
import type { DataKey } from './providers.js';

const EXTRACT_SALT_V1 = Buffer.from('rotation-suite/envelope v1 extract');
const EXPAND_INFO_V1 = Buffer.from('rotation-suite/envelope v1 key+commitment');
const EXTRACT_SALT_V2 = Buffer.from('rotation-suite/envelope v2 extract');
const EXPAND_LABEL_V2 = Buffer.from('rotation-suite/envelope v2 keys');
const KEY_TAG_LABEL_V2 = Buffer.from('rotation-suite/envelope v2 key section');

/** Key material of one data key: the PRK (v1) or the derived v2 keys; the data key itself is not kept. */
export interface Material {
  version: 1 | 2;
  provider: number;
  keyId: string;
  wrapped: Buffer;
  prk?: Buffer; // v1: HKDF-Extract output
  ck?: Buffer; // v2: content key
  commit?: Buffer; // v2
  tagKey?: Buffer; // v2: key-section key
  keyTag?: Buffer; // v2: the tag of this key section
}

export function wipe(m: Material) {
  for (const b of [m.prk, m.ck, m.tagKey]) b?.fill(0);
}

function extract(dk: Buffer): Buffer {
  return createHmac('sha512', EXTRACT_SALT_V1).update(dk).digest();
}

export function expand(prk: Buffer, provider: number, messageId: Buffer): { ck: Buffer; commit: Buffer } {
  // L = 64 is one SHA-512 block: OKM = HMAC(PRK, info ‖ 0x01) (RFC 5869 with a single block).
  const okm = createHmac('sha512', prk).update(EXPAND_INFO_V1).update(Buffer.from([0x01, provider])).update(messageId).update(Buffer.from([0x01])).digest();
  return { ck: okm.subarray(0, 32), commit: okm.subarray(32, 64) };
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function keyTagV2(tagKey: Buffer, provider: number, stable: Buffer, keyId: string, wrapped: Buffer): Buffer {
  const id = Buffer.from(keyId, 'utf8');
  return createHmac('sha256', tagKey)
    .update(Buffer.concat([KEY_TAG_LABEL_V2, Buffer.from([2, provider]), u16(stable.length), stable, u16(id.length), id, u16(wrapped.length), wrapped]))
    .digest();
}

export function materialV1(dk: DataKey, provider: number): Material {
  const m: Material = { version: 1, provider, keyId: dk.keyId, wrapped: dk.encrypted, prk: extract(dk.plaintext) };
  dk.plaintext.fill(0);
  return m;
}

/** The format-2 keys of a data key (derived once per data key) and the tag of its key section. */
export interface KeysV2 {
  contentKey: Buffer;
  keyTagKey: Buffer;
  commitment: Buffer;
  keyTag: Buffer;
}

/**
 * Derives the format-2 keys: OKM = HKDF-SHA-512(IKM = data key, salt = "rotation-suite/envelope v2 extract",
 * info = "rotation-suite/envelope v2 keys" ‖ 0x02 ‖ provider, L = 96); content key = OKM[0:32], key-section
 * key = OKM[32:64], commitment = OKM[64:96]; the key tag is HMAC-SHA-256 under the key-section key of the
 * label, version, provider, stable context, key id and wrapped key.
 */
export function deriveKeysV2(dataKey: Uint8Array, provider: number, stable: Buffer, keyId: string, wrapped: Buffer): KeysV2 {
  const okm = Buffer.from(hkdfSync('sha512', dataKey, EXTRACT_SALT_V2, Buffer.concat([EXPAND_LABEL_V2, Buffer.from([2, provider])]), 96));
  const k = { contentKey: Buffer.from(okm.subarray(0, 32)), keyTagKey: Buffer.from(okm.subarray(32, 64)), commitment: Buffer.from(okm.subarray(64, 96)) };
  okm.fill(0);
  return { ...k, keyTag: keyTagV2(k.keyTagKey, provider, stable, keyId, wrapped) };
}

export function materialV2(dk: DataKey, provider: number, stable: Buffer): Material {
  const k = deriveKeysV2(dk.plaintext, provider, stable, dk.keyId, dk.encrypted);
  dk.plaintext.fill(0);
  return { version: 2, provider, keyId: dk.keyId, wrapped: dk.encrypted, ck: k.contentKey, tagKey: k.keyTagKey, commit: k.commitment, keyTag: k.keyTag };
}

/**
 * Writes one format-2 blob: message number seq under the data key (its nonce is four zero bytes and seq,
 * big-endian), the canonical stable and message contexts, the key section and its tag. seq must never repeat
 * under one data key; Envelope counts it per cached data key.
 */
export function sealV2(k: KeysV2, provider: number, keyId: string, wrapped: Buffer, stable: Buffer, message: Buffer, seq: number, plaintext: Uint8Array): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq >= MAX_MESSAGES_PER_DATA_KEY) throw err('malformed', 'encrypt', 'sequence number out of range');
  const id = Buffer.from(keyId, 'utf8');
  const nonce = Buffer.alloc(NONCE_SIZE);
  nonce.writeBigUInt64BE(BigInt(seq), 4);
  const head = Buffer.concat([Buffer.from([2, provider]), u16(stable.length), stable, u16(message.length), message, k.commitment, nonce, Buffer.alloc(4)]);
  head.writeUInt32BE(plaintext.length + TAG_SIZE, head.length - 4);
  const c = createCipheriv('aes-256-gcm', k.contentKey, nonce);
  c.setAAD(head);
  return Buffer.concat([head, u16(id.length), id, u16(wrapped.length), wrapped, k.keyTag, c.update(plaintext), c.final(), c.getAuthTag()]);
}
