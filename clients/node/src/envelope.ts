// The suite's envelope format (docs/envelope-format.md), versions 1 and 2:
// AES-256-GCM under keys derived with HKDF-SHA-512 from a data key, a key
// commitment, the canonical encryption context as authenticated data, and
// the data key wrapped by AWS KMS (or the local provider). Version 1 derives
// a content key per message (random message id and nonce); version 2
// derives the keys once per data key, counts nonces per data key, splits the
// context into a stable part (bound to the data key) and a message part
// (authenticated only), and authenticates the key section with its own tag.
// Readers fail closed: a blob is parsed and checked completely before any
// key is touched, and every failure is an EnvelopeError of one kind with no
// plaintext.

import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export type EnvelopeErrorKind =
  | 'authentication' | 'context-mismatch' | 'key-not-allowed' | 'unsupported-version' | 'malformed' | 'provider';

const kindText: Record<EnvelopeErrorKind, string> = {
  'authentication': 'authentication failed',
  'context-mismatch': 'encryption context mismatch',
  'key-not-allowed': 'key not allowed',
  'unsupported-version': 'unsupported format version',
  'malformed': 'malformed',
  'provider': 'key provider failed',
};

/** Every envelope failure. kind matches pkg/envelope's Err values; the message holds no secret. */
export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
  /** Set (with kind malformed) when the value has no envelope prefix at all: it never was an envelope. */
  notEnvelope = false;
  constructor(readonly kind: EnvelopeErrorKind, readonly op: string, detail = '', options?: { cause?: unknown }) {
    super(`envelope ${op}: ${kindText[kind]}${detail ? ': ' + detail : ''}`, options);
  }
}

const err = (kind: EnvelopeErrorKind, op: string, detail = '', cause?: unknown) => new EnvelopeError(kind, op, detail, cause === undefined ? undefined : { cause });

/** Encryption context: string pairs bound to the data key and the ciphertext. */
export type EncryptionContext = Readonly<Record<string, string>>;

export const PROVIDER_KMS = 0x01;
export const PROVIDER_LOCAL = 0x02;
export const MESSAGE_ID_SIZE = 32;
export const NONCE_SIZE = 12;
export const COMMIT_SIZE = 32;
export const TAG_SIZE = 16;
export const MAX_CONTEXT = 8192;
export const MAX_KEY_ID = 2048;
export const MAX_WRAPPED = 6144;
export const MAX_PLAINTEXT = 64 << 20;
const MIN_CONTEXT = 2;
const MAX_BODY = MAX_PLAINTEXT + TAG_SIZE;
const MAX_BLOB_V1 = 88 + MAX_CONTEXT + MAX_KEY_ID + MAX_WRAPPED + MAX_BODY;
export const KEY_TAG_SIZE = 32;
const FIXED_AAD_V2 = 1 + 1 + 2 + 2 + COMMIT_SIZE + NONCE_SIZE + 4;
const MAX_BLOB_V2 = FIXED_AAD_V2 + 2 * MAX_CONTEXT + 2 + MAX_KEY_ID + 2 + MAX_WRAPPED + KEY_TAG_SIZE + MAX_BODY;
/** The most messages (and plaintext bytes) one data key may encrypt in version 2 (its nonce counter's range). */
export const MAX_MESSAGES_PER_DATA_KEY = 2 ** 32;
export const MAX_BYTES_PER_DATA_KEY = 2 ** 32;

const EXTRACT_SALT_V1 = Buffer.from('rotation-suite/envelope v1 extract');
const EXPAND_INFO_V1 = Buffer.from('rotation-suite/envelope v1 key+commitment');
const LOCAL_WRAP_AAD_V1 = Buffer.from('rotation-suite/envelope v1 local wrap');
const EXTRACT_SALT_V2 = Buffer.from('rotation-suite/envelope v2 extract');
const EXPAND_LABEL_V2 = Buffer.from('rotation-suite/envelope v2 keys');
const KEY_TAG_LABEL_V2 = Buffer.from('rotation-suite/envelope v2 key section');

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

/** The parsed, unauthenticated header of a blob (for routing and inventory only). */
export interface Header {
  version: 1 | 2;
  provider: number;
  /** Version 1 only: the random message id. */
  messageId?: Buffer;
  /** The canonical context (version 1), or the stable context (version 2). */
  context: Buffer;
  /** Version 2 only: the canonical message context. */
  messageContext?: Buffer;
  commitment: Buffer;
  nonce: Buffer;
  aad: Buffer; // bytes [0, end of the authenticated header)
  keyId: string;
  wrappedKey: Buffer;
  /** Version 2 only: the key section's tag. */
  keyTag?: Buffer;
  body: Buffer;
}

/** Keys present in both canonical contexts (both sorted). */
function sharesKey(a: Buffer, b: Buffer): boolean {
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

/**
 * Parses a binary blob of version 1 or 2 with every check of the format, in order: lengths against their
 * bounds before use and against what is left, canonical contexts (v2: disjoint), a UTF-8 key id, nothing
 * after the body. Nothing is decrypted.
 */
export function parseHeader(blob: Uint8Array, op = 'parse'): Header {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = (d: string) => err('malformed', op, d);
  if (b.length < 2) throw bad('shorter than 2 bytes');
  const version = b[0];
  if (version !== 1 && version !== 2) throw err('unsupported-version', op, `version ${b[0]}`);
  if (b.length > (version === 1 ? MAX_BLOB_V1 : MAX_BLOB_V2)) throw bad('longer than any well-formed blob');
  const provider = b[1];
  if (provider === 0x00 || provider === 0xff) throw bad('reserved provider id');
  let o = 2;
  const need = (n: number, what: string) => {
    if (o + n > b.length) throw bad(`truncated in ${what}`);
  };
  const ctxPart = (what: string) => {
    need(2, `the ${what} length`);
    const c = b.readUInt16BE(o);
    o += 2;
    if (c < MIN_CONTEXT || c > MAX_CONTEXT) throw bad(`${what} length out of bounds`);
    need(c, `the ${what}`);
    const ctx = b.subarray(o, o + c);
    o += c;
    parseCanonicalContext(ctx, op);
    return ctx;
  };
  let messageId: Buffer | undefined;
  let context: Buffer;
  let messageContext: Buffer | undefined;
  if (version === 1) {
    need(MESSAGE_ID_SIZE, 'the header');
    messageId = b.subarray(o, o + MESSAGE_ID_SIZE);
    o += MESSAGE_ID_SIZE;
    context = ctxPart('context');
  } else {
    context = ctxPart('stable context');
    messageContext = ctxPart('message context');
    if (sharesKey(context, messageContext)) throw bad('a context key is in both the stable and the message context');
  }
  need(COMMIT_SIZE + NONCE_SIZE + 4, 'the header');
  const commitment = b.subarray(o, o + COMMIT_SIZE);
  o += COMMIT_SIZE;
  const nonce = b.subarray(o, o + NONCE_SIZE);
  o += NONCE_SIZE;
  const bodyLen = b.readUInt32BE(o);
  o += 4;
  if (bodyLen < TAG_SIZE || bodyLen > MAX_BODY) throw bad('body length out of bounds');
  const aad = b.subarray(0, o);
  need(2, 'the key id length');
  const k = b.readUInt16BE(o);
  o += 2;
  if (k < 1 || k > MAX_KEY_ID) throw bad('key id length out of bounds');
  need(k + 2, 'the key id');
  const keyIdBytes = b.subarray(o, o + k);
  o += k;
  let keyId: string;
  try {
    keyId = new TextDecoder('utf-8', { fatal: true }).decode(keyIdBytes);
  } catch {
    throw bad('the key id is not UTF-8');
  }
  const e = b.readUInt16BE(o);
  o += 2;
  if (e < 1 || e > MAX_WRAPPED) throw bad('wrapped key length out of bounds');
  need(e + (version === 2 ? KEY_TAG_SIZE : 0), 'the wrapped key');
  const wrappedKey = b.subarray(o, o + e);
  o += e;
  let keyTag: Buffer | undefined;
  if (version === 2) {
    keyTag = b.subarray(o, o + KEY_TAG_SIZE);
    o += KEY_TAG_SIZE;
  }
  need(bodyLen, 'the body');
  const body = b.subarray(o, o + bodyLen);
  o += bodyLen;
  if (o !== b.length) throw bad('trailing bytes after the body');
  return { version, provider, messageId, context, messageContext, commitment, nonce, aad, keyId, wrappedKey, keyTag, body };
}

// ---- text form ----

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

// ---- providers ----

export interface DataKey {
  keyId: string;
  encrypted: Buffer;
  plaintext: Buffer;
}

/** Wraps and unwraps data keys. KmsProvider and LocalProvider implement it. */
export interface Provider {
  readonly id: number;
  /** Whether keyId may unwrap data keys (checked before any call). */
  allowed(keyId: string): boolean;
  generateDataKey(ec: EncryptionContext, canonical: Buffer): Promise<DataKey>;
  decryptDataKey(keyId: string, wrapped: Buffer, ec: EncryptionContext, canonical: Buffer): Promise<DataKey>;
}

/** A local key-encryption key: an id (1–256 printable characters) and 32 bytes. */
export class LocalProvider implements Provider {
  readonly id = PROVIDER_LOCAL;
  readonly #keys = new Map<string, Buffer>();
  readonly #current: string;
  #wraps = 0;
  /** Data keys one provider wraps before it refuses: random 96-bit wrap nonces allow 2^32 uses of a KEK; a quarter leaves room for several processes. */
  static readonly MAX_WRAPS = 2 ** 30;

  /** keys: id → 32-byte KEK or its base64 (standard or URL alphabet); the first one encrypts. */
  constructor(keys: Record<string, Uint8Array | string>) {
    const ids = Object.keys(keys);
    if (ids.length === 0) throw err('malformed', 'local-key', 'no key');
    for (const id of ids) {
      if (id.length < 1 || id.length > 256 || !/^[\x21-\x7e]+$/.test(id)) throw err('malformed', 'local-key', 'id must be 1 to 256 printable characters');
      const v = keys[id];
      const k = typeof v === 'string' ? Buffer.from(v.trim().replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url') : Buffer.from(v);
      if (k.length !== 32) throw err('malformed', 'local-key', `key ${JSON.stringify(id)} must be 32 bytes`);
      this.#keys.set(id, k);
    }
    this.#current = ids[0];
  }

  allowed(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  #aad(keyId: string, canonical: Buffer): Buffer {
    const id = Buffer.from(keyId, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(id.length);
    return Buffer.concat([LOCAL_WRAP_AAD_V1, len, id, canonical]);
  }

  async generateDataKey(_ec: EncryptionContext, canonical: Buffer): Promise<DataKey> {
    if (++this.#wraps > LocalProvider.MAX_WRAPS) {
      this.#wraps--;
      throw err('provider', 'local:wrap', `local key ${JSON.stringify(this.#current)} has wrapped ${LocalProvider.MAX_WRAPS} data keys, the limit for random nonces; rotate the key-encryption key`);
    }
    const dk = randomBytes(32);
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#keys.get(this.#current)!, nonce);
    c.setAAD(this.#aad(this.#current, canonical));
    const ct = Buffer.concat([c.update(dk), c.final(), c.getAuthTag()]);
    return { keyId: this.#current, encrypted: Buffer.concat([nonce, ct]), plaintext: dk };
  }

  async decryptDataKey(keyId: string, wrapped: Buffer, _ec: EncryptionContext, canonical: Buffer): Promise<DataKey> {
    const kek = this.#keys.get(keyId);
    if (!kek) throw err('key-not-allowed', 'local-unwrap', `key ${JSON.stringify(keyId)}`);
    if (wrapped.length !== 60) throw err('authentication', 'local-unwrap', 'the wrapped key is not 60 bytes');
    try {
      const d = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12));
      d.setAAD(this.#aad(keyId, canonical));
      d.setAuthTag(wrapped.subarray(44));
      const dk = Buffer.concat([d.update(wrapped.subarray(12, 44)), d.final()]);
      return { keyId, encrypted: wrapped, plaintext: dk };
    } catch {
      throw err('authentication', 'local-unwrap', 'the wrapped key does not open');
    }
  }
}

// ---- key derivation and the envelope ----

/** Key material of one data key: the PRK (v1) or the derived v2 keys; the data key itself is not kept. */
interface Material {
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

function wipe(m: Material) {
  for (const b of [m.prk, m.ck, m.tagKey]) b?.fill(0);
}

function extract(dk: Buffer): Buffer {
  return createHmac('sha512', EXTRACT_SALT_V1).update(dk).digest();
}

function expand(prk: Buffer, provider: number, messageId: Buffer): { ck: Buffer; commit: Buffer } {
  // L = 64 is one SHA-512 block: OKM = HMAC(PRK, info ‖ 0x01) (RFC 5869 with a single block).
  const okm = createHmac('sha512', prk).update(EXPAND_INFO_V1).update(Buffer.from([0x01, provider])).update(messageId).update(Buffer.from([0x01])).digest();
  return { ck: okm.subarray(0, 32), commit: okm.subarray(32, 64) };
}

function u16(n: number): Buffer {
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

function materialV1(dk: DataKey, provider: number): Material {
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

function materialV2(dk: DataKey, provider: number, stable: Buffer): Material {
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

export interface CacheConfig {
  /** How long a data key may be used (required, > 0). */
  maxAgeMs: number;
  /** Messages encrypted per data key (default and maximum 2^32). */
  maxMessages?: number;
  /** Plaintext bytes encrypted per data key (default and maximum 2^32). */
  maxBytes?: number;
  /** Cached keys, encryption and decryption together (default 1000). */
  maxEntries?: number;
}

interface CacheEntry {
  m: Material;
  created: number;
  messages: number;
  bytes: number;
}

export interface EnvelopeConfig {
  provider: Provider;
  /** Enables the data-key cache; off by default (every call goes to the provider). */
  cache?: CacheConfig;
  /** The format new blobs are written in: 2 (default) or 1. Both are always read. */
  writeVersion?: 1 | 2;
  now?: () => number;
  /** The source of version 1's message ids and nonces (default crypto.randomBytes); replace it only to reproduce known-answer vectors. */
  random?: (n: number) => Buffer;
}

/** Encrypts and decrypts blobs with data keys from one provider. */
export class Envelope {
  readonly #p: Provider;
  readonly #cache?: Required<CacheConfig>;
  readonly #entries = new Map<string, CacheEntry>(); // insertion order = LRU order
  readonly #inflight = new Map<string, Promise<Material>>();
  readonly #now: () => number;
  readonly #random: (n: number) => Buffer;
  readonly #version: 1 | 2;
  /** Provider calls made (for tests and metrics). */
  providerCalls = 0;

  constructor(cfg: EnvelopeConfig) {
    if (!cfg.provider) throw err('malformed', 'new', 'provider is required');
    this.#p = cfg.provider;
    this.#now = cfg.now ?? Date.now;
    this.#random = cfg.random ?? randomBytes;
    if (cfg.writeVersion !== undefined && cfg.writeVersion !== 1 && cfg.writeVersion !== 2) throw err('malformed', 'new', 'writeVersion must be 1 or 2');
    this.#version = cfg.writeVersion ?? 2;
    if (cfg.cache) {
      const c = cfg.cache;
      if (!(c.maxAgeMs > 0)) throw err('malformed', 'new', 'cache.maxAgeMs must be positive');
      if ((c.maxMessages ?? 0) < 0 || (c.maxBytes ?? 0) < 0 || (c.maxEntries ?? 0) < 0) throw err('malformed', 'new', 'cache limits must not be negative');
      if ((c.maxMessages ?? 0) > MAX_MESSAGES_PER_DATA_KEY || (c.maxBytes ?? 0) > MAX_BYTES_PER_DATA_KEY) throw err('malformed', 'new', `cache.maxMessages and maxBytes are at most ${MAX_MESSAGES_PER_DATA_KEY} each`);
      this.#cache = { maxAgeMs: c.maxAgeMs, maxMessages: c.maxMessages || MAX_MESSAGES_PER_DATA_KEY, maxBytes: c.maxBytes || MAX_BYTES_PER_DATA_KEY, maxEntries: c.maxEntries || 1000 };
    }
  }

  toString(): string {
    return `Envelope{provider:${this.#p.id} cache:${this.#cache !== undefined} writes:v${this.#version}}`;
  }

  /** Clears every cached key. */
  close(): void {
    for (const e of this.#entries.values()) wipe(e.m);
    this.#entries.clear();
  }

  #usable(e: CacheEntry, size: number, encrypt: boolean): boolean {
    if (!this.#cache) return false;
    if (this.#now() - e.created >= this.#cache.maxAgeMs) return false;
    if (encrypt && (e.messages + 1 > this.#cache.maxMessages || e.bytes + size > this.#cache.maxBytes)) return false;
    return true;
  }

  /** Key material for one use, and the use's sequence number (its entry's message count before it: v2 nonces). */
  async #material(key: string, size: number, encrypt: boolean, load: () => Promise<Material>): Promise<{ m: Material; seq: number; cached: boolean }> {
    if (!this.#cache || (encrypt && size > this.#cache.maxBytes)) {
      this.providerCalls++;
      return { m: await load(), seq: 0, cached: false };
    }
    for (;;) {
      const e = this.#entries.get(key);
      if (e && this.#usable(e, size, encrypt)) {
        this.#entries.delete(key);
        this.#entries.set(key, e);
        const seq = e.messages;
        if (encrypt) {
          e.messages++;
          e.bytes += size;
        }
        return { m: e.m, seq, cached: true };
      }
      if (e) {
        // Spent or expired. Its key is wiped once no use of it can still be running: uses are synchronous
        // after they obtain the material, so that is now.
        this.#entries.delete(key);
        wipe(e.m);
      }
      const f = this.#inflight.get(key);
      if (f) {
        await f.catch(() => undefined);
        if (!this.#entries.has(key)) {
          await f; // the load failed: share its error
          throw err('provider', encrypt ? 'encrypt' : 'decrypt', 'the cache lost a fresh entry');
        }
        continue;
      }
      this.providerCalls++;
      const p = load();
      this.#inflight.set(key, p);
      try {
        const m = await p;
        this.#entries.set(key, { m, created: this.#now(), messages: encrypt ? 1 : 0, bytes: encrypt ? size : 0 });
        while (this.#entries.size > this.#cache.maxEntries) {
          const oldest = this.#entries.keys().next().value as string;
          if (oldest === key) break;
          wipe(this.#entries.get(oldest)!.m);
          this.#entries.delete(oldest);
        }
        return { m, seq: 0, cached: true };
      } finally {
        this.#inflight.delete(key);
      }
    }
  }

  async #generate(op: string, ec: EncryptionContext, canon: Buffer, version: 1 | 2): Promise<Material> {
    let dk: DataKey;
    try {
      dk = await this.#p.generateDataKey(ec, canon);
    } catch (e) {
      throw e instanceof EnvelopeError ? e : err('provider', op, 'generate a data key', e);
    }
    const id = Buffer.byteLength(dk.keyId, 'utf8');
    if (dk.plaintext.length !== 32 || id < 1 || id > MAX_KEY_ID || dk.encrypted.length < 1 || dk.encrypted.length > MAX_WRAPPED) {
      dk.plaintext.fill(0);
      throw err('provider', op, 'the provider returned a malformed data key');
    }
    return version === 1 ? materialV1(dk, this.#p.id) : materialV2(dk, this.#p.id, canon);
  }

  /** Encrypts plaintext under ec (in version 2: ec is the stable context, the message context is empty). */
  encrypt(plaintext: Uint8Array, ec: EncryptionContext = {}): Promise<Buffer> {
    return this.encryptWith(plaintext, ec, {});
  }

  /**
   * Encrypts plaintext under the stable context (given to the key provider: one cached data key serves every
   * message with the same stable context) and the message context (a row id, say: authenticated with the
   * body in version 2). A key may not be in both. Writing version 1, both are bound as one context.
   */
  async encryptWith(plaintext: Uint8Array, stable: EncryptionContext, message: EncryptionContext): Promise<Buffer> {
    const op = 'encrypt';
    if (plaintext.length > MAX_PLAINTEXT) throw err('malformed', op, 'plaintext larger than 64 MiB');
    for (const k of Object.keys(message)) if (Object.hasOwn(stable, k)) throw err('malformed', op, `context key ${JSON.stringify(k.slice(0, 40))} is in both the stable and the message context`);
    if (this.#version === 1) return this.#encrypt1(plaintext, Object.keys(message).length ? { ...stable, ...message } : stable);
    const canon = canonicalContext(stable, op);
    const mc = canonicalContext(message, op);
    const { m, seq, cached } = await this.#material('e2' + canon.toString('base64'), plaintext.length, true, () => this.#generate(op, stable, canon, 2));
    const out = sealV2({ contentKey: m.ck!, keyTagKey: m.tagKey!, commitment: m.commit!, keyTag: m.keyTag! }, this.#p.id, m.keyId, m.wrapped, canon, mc, seq, plaintext);
    if (!cached) wipe(m);
    return out;
  }

  async #encrypt1(plaintext: Uint8Array, ec: EncryptionContext): Promise<Buffer> {
    const op = 'encrypt';
    const canon = canonicalContext(ec, op);
    const { m, cached } = await this.#material('E' + canon.toString('base64'), plaintext.length, true, () => this.#generate(op, ec, canon, 1));
    const keyId = Buffer.from(m.keyId, 'utf8');
    const messageId = this.#random(MESSAGE_ID_SIZE);
    const nonce = this.#random(NONCE_SIZE);
    const { ck, commit } = expand(m.prk!, this.#p.id, messageId);
    const head = Buffer.alloc(84 + canon.length);
    head[0] = 1;
    head[1] = this.#p.id;
    messageId.copy(head, 2);
    head.writeUInt16BE(canon.length, 34);
    canon.copy(head, 36);
    commit.copy(head, 36 + canon.length);
    nonce.copy(head, 68 + canon.length);
    head.writeUInt32BE(plaintext.length + TAG_SIZE, 80 + canon.length);
    const c = createCipheriv('aes-256-gcm', ck, nonce);
    c.setAAD(head);
    const out = Buffer.concat([head, u16(keyId.length), keyId, u16(m.wrapped.length), m.wrapped, c.update(plaintext), c.final(), c.getAuthTag()]);
    ck.fill(0);
    if (!cached) wipe(m);
    return out;
  }

  /** Decrypts a blob (binary or text form, v1 or v2) that must carry exactly the context ec (v2: as its stable context, with an empty message context). */
  decrypt(blob: Uint8Array | string, ec: EncryptionContext = {}): Promise<Buffer> {
    return this.decryptWith(blob, ec, {});
  }

  /** Decrypts a blob made with encryptWith(…, stable, message). A version-1 blob is checked against the union of both. */
  async decryptWith(blob: Uint8Array | string, stable: EncryptionContext, message: EncryptionContext): Promise<Buffer> {
    const op = 'decrypt';
    const bin = typeof blob === 'string' ? decodeText(blob) : blob;
    const h = parseHeader(bin, op);
    for (const k of Object.keys(message)) if (Object.hasOwn(stable, k)) throw err('malformed', op, `context key ${JSON.stringify(k.slice(0, 40))} is in both the stable and the message context`);
    const ec = h.version === 1 && Object.keys(message).length ? { ...stable, ...message } : stable;
    if (!canonicalContext(ec, op).equals(h.context)) throw err('context-mismatch', op, h.version === 2 ? 'stable context' : '');
    if (h.version === 2 && !canonicalContext(message, op).equals(h.messageContext!)) throw err('context-mismatch', op, 'message context');
    if (h.provider !== this.#p.id) throw err('key-not-allowed', op, `the blob's provider id ${h.provider} is not this envelope's provider`);
    if (!this.#p.allowed(h.keyId)) throw err('key-not-allowed', op, `key ${JSON.stringify(h.keyId.slice(0, 200))} is not on the allow-list`);
    const cacheKey = 'D' + h.version + createHash('sha256').update(Buffer.from([h.provider])).update(u16(Buffer.byteLength(h.keyId))).update(h.keyId).update(u16(h.wrappedKey.length)).update(h.wrappedKey).update(h.context).digest('base64');
    const { m, cached } = await this.#material(cacheKey, 0, false, async () => {
      let dk: DataKey;
      try {
        dk = await this.#p.decryptDataKey(h.keyId, h.wrappedKey, ec, h.context);
      } catch (e) {
        throw e instanceof EnvelopeError ? e : err('provider', op, 'unwrap the data key', e);
      }
      if (dk.plaintext.length !== 32) throw err('provider', op, 'the provider returned a data key that is not 32 bytes');
      dk = { ...dk, keyId: h.keyId, encrypted: h.wrappedKey };
      return h.version === 1 ? materialV1(dk, h.provider) : materialV2(dk, h.provider, h.context);
    });
    try {
      let ck: Buffer;
      if (h.version === 1) {
        const x = expand(m.prk!, h.provider, h.messageId!);
        if (!timingSafeEqual(x.commit, h.commitment)) {
          x.ck.fill(0);
          throw err('authentication', op, 'key commitment mismatch');
        }
        ck = x.ck;
      } else {
        if (!timingSafeEqual(m.commit!, h.commitment)) throw err('authentication', op, 'key commitment does not match the data key');
        if (!timingSafeEqual(m.keyTag!, h.keyTag!)) throw err('authentication', op, 'key section was modified');
        ck = m.ck!;
      }
      const d = createDecipheriv('aes-256-gcm', ck, h.nonce);
      d.setAAD(h.aad);
      d.setAuthTag(h.body.subarray(h.body.length - TAG_SIZE));
      const pt = d.update(h.body.subarray(0, h.body.length - TAG_SIZE));
      try {
        d.final();
      } catch {
        pt.fill(0);
        throw err('authentication', op, 'header or body was modified');
      } finally {
        if (h.version === 1) ck.fill(0);
      }
      return pt;
    } finally {
      if (!cached) wipe(m);
    }
  }
}

/**
 * An encrypted table column, for a TypeORM or pg subscriber (the design's EncryptionSubscriber): each value
 * is bound to its table, column and row — in version 2 the table and column (and any further stable pairs,
 * a tenant say) go to the key provider and the row is the message context, so one cached data key serves a
 * whole column. A value copied to another row or column fails with context-mismatch.
 */
export class EncryptedColumn {
  readonly #env: Envelope;
  readonly #stable: Record<string, string>;

  constructor(env: Envelope, readonly table: string, readonly column: string, stable: Record<string, string> = {}) {
    if (!table || !column) throw err('malformed', 'column', 'a table and a column are required');
    for (const k of ['table', 'column', 'row']) if (Object.hasOwn(stable, k)) throw err('malformed', 'column', `the stable context may not use the reserved key "${k}"`);
    this.#env = env;
    this.#stable = { ...stable, table, column };
  }

  /** Encrypts the value of row rowId and returns its text form. */
  async encrypt(rowId: string, plaintext: Uint8Array | string): Promise<string> {
    if (!rowId) throw err('malformed', 'encrypt-field', 'a row id is required');
    return encodeText(await this.#env.encryptWith(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext, this.#stable, { row: rowId }));
  }

  /**
   * Decrypts the text stored in row rowId (format 1 or 2). Every failure throws; isNotEnvelope tells a value
   * that never was an envelope (legacy plaintext, to migrate) from a damaged or foreign one (never plaintext).
   */
  decrypt(rowId: string, text: string): Promise<Buffer> {
    if (!rowId) throw err('malformed', 'decrypt-field', 'a row id is required');
    return this.#env.decryptWith(text, this.#stable, { row: rowId });
  }

  /**
   * For migrations: returns the plaintext of an encrypted value, or the value itself when it never was an
   * envelope (no envelope prefix) — and says which. A damaged, forged or misplaced envelope still throws.
   */
  async decryptOrLegacy(rowId: string, value: string): Promise<{ plaintext: Buffer; legacy: boolean }> {
    try {
      return { plaintext: await this.decrypt(rowId, value), legacy: false };
    } catch (e) {
      if (isNotEnvelope(e)) return { plaintext: Buffer.from(value, 'utf8'), legacy: true };
      throw e;
    }
  }
}

/** Whether err says the value was never an envelope (no envelope text prefix), as opposed to a damaged one. */
export function isNotEnvelope(e: unknown): boolean {
  return e instanceof EnvelopeError && e.notEnvelope;
}
