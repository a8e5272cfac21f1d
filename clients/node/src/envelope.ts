// The suite's envelope format (docs/envelope-format.md): AES-256-GCM under a
// per-message key derived with HKDF-SHA-512 from a data key, with a key
// commitment, the canonical encryption context as authenticated data, and
// the data key wrapped by AWS KMS (or the local provider). Readers fail
// closed: a blob is parsed and checked completely before any key is touched,
// and every failure is an EnvelopeError of one kind with no plaintext.

import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

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

const EXTRACT_SALT_V1 = Buffer.from('rotation-suite/envelope v1 extract');
const EXPAND_INFO_V1 = Buffer.from('rotation-suite/envelope v1 key+commitment');
const LOCAL_WRAP_AAD_V1 = Buffer.from('rotation-suite/envelope v1 local wrap');

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
  version: number;
  provider: number;
  messageId: Buffer;
  context: Buffer; // canonical encoding
  commitment: Buffer;
  nonce: Buffer;
  aad: Buffer; // bytes [0, end of the authenticated header)
  keyId: string;
  wrappedKey: Buffer;
  body: Buffer;
}

/** Parses a binary blob with every check of §1, in order; nothing is decrypted. */
export function parseHeader(blob: Uint8Array, op = 'parse'): Header {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = (d: string) => err('malformed', op, d);
  if (b.length < 2) throw bad('shorter than 2 bytes');
  if (b[0] !== 1) throw err('unsupported-version', op, `version ${b[0]}`);
  if (b.length > MAX_BLOB_V1) throw bad('longer than any well-formed blob');
  const provider = b[1];
  if (provider === 0x00 || provider === 0xff) throw bad('reserved provider id');
  let o = 2;
  const need = (n: number, what: string) => {
    if (o + n > b.length) throw bad(`truncated in ${what}`);
  };
  need(MESSAGE_ID_SIZE + 2, 'the header');
  const messageId = b.subarray(o, o + MESSAGE_ID_SIZE);
  o += MESSAGE_ID_SIZE;
  const c = b.readUInt16BE(o);
  o += 2;
  if (c < MIN_CONTEXT || c > MAX_CONTEXT) throw bad('context length out of bounds');
  need(c + COMMIT_SIZE + NONCE_SIZE + 4, 'the header');
  const context = b.subarray(o, o + c);
  o += c;
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
  const e = b.readUInt16BE(o);
  o += 2;
  if (e < 1 || e > MAX_WRAPPED) throw bad('wrapped key length out of bounds');
  need(e, 'the wrapped key');
  const wrappedKey = b.subarray(o, o + e);
  o += e;
  need(bodyLen, 'the body');
  const body = b.subarray(o, o + bodyLen);
  o += bodyLen;
  parseCanonicalContext(context, op);
  let keyId: string;
  try {
    keyId = new TextDecoder('utf-8', { fatal: true }).decode(keyIdBytes);
  } catch {
    throw bad('the key id is not UTF-8');
  }
  if (o !== b.length) throw bad('trailing bytes after the body');
  return { version: 1, provider, messageId, context, commitment, nonce, aad, keyId, wrappedKey, body };
}

// ---- text form ----

const MAX_TEXT_V1 = 5 + Math.ceil((MAX_BLOB_V1 * 4) / 3);

/** The text form: "env1:" + unpadded base64url of the blob. */
export function encodeText(blob: Uint8Array): string {
  if (blob.length < 1 || blob[0] !== 1) throw err('unsupported-version', 'encode-text', `version ${blob[0]}`);
  return 'env1:' + Buffer.from(blob).toString('base64url');
}

/** Decodes the text form strictly: prefix, length, alphabet, canonical base64url. */
export function decodeText(text: string): Buffer {
  const op = 'decode-text';
  const m = /^env([0-9]+):/.exec(text);
  if (!m) throw err('malformed', op, 'no envN: prefix');
  if (m[1] !== '1') throw err('unsupported-version', op, `prefix env${m[1].slice(0, 8)}:`);
  const body = text.slice(5);
  if (text.length > MAX_TEXT_V1) throw err('malformed', op, 'longer than any well-formed blob');
  if (!/^[A-Za-z0-9_-]*$/.test(body) || body.length % 4 === 1) throw err('malformed', op, 'not unpadded base64url');
  const b = Buffer.from(body, 'base64url');
  if (b.toString('base64url') !== body) throw err('malformed', op, 'not canonical base64url');
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

interface Material {
  keyId: string;
  wrapped: Buffer;
  prk: Buffer; // HKDF-Extract output; the data key itself is not kept
}

function extract(dk: Buffer): Buffer {
  return createHmac('sha512', EXTRACT_SALT_V1).update(dk).digest();
}

function expand(prk: Buffer, provider: number, messageId: Buffer): { ck: Buffer; commit: Buffer } {
  // L = 64 is one SHA-512 block: OKM = HMAC(PRK, info ‖ 0x01) (RFC 5869 with a single block).
  const okm = createHmac('sha512', prk).update(EXPAND_INFO_V1).update(Buffer.from([0x01, provider])).update(messageId).update(Buffer.from([0x01])).digest();
  return { ck: okm.subarray(0, 32), commit: okm.subarray(32, 64) };
}

export interface CacheConfig {
  /** How long a data key may be used (required, > 0). */
  maxAgeMs: number;
  /** Messages encrypted per data key (default 2^32). */
  maxMessages?: number;
  /** Plaintext bytes encrypted per data key (default 2^53). */
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
  now?: () => number;
  /** The source of message ids and nonces (default crypto.randomBytes); replace it only to reproduce known-answer vectors. */
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
  /** Provider calls made (for tests and metrics). */
  providerCalls = 0;

  constructor(cfg: EnvelopeConfig) {
    if (!cfg.provider) throw err('malformed', 'new', 'provider is required');
    this.#p = cfg.provider;
    this.#now = cfg.now ?? Date.now;
    this.#random = cfg.random ?? randomBytes;
    if (cfg.cache) {
      const c = cfg.cache;
      if (!(c.maxAgeMs > 0)) throw err('malformed', 'new', 'cache.maxAgeMs must be positive');
      if ((c.maxMessages ?? 0) < 0 || (c.maxBytes ?? 0) < 0 || (c.maxEntries ?? 0) < 0) throw err('malformed', 'new', 'cache limits must not be negative');
      this.#cache = { maxAgeMs: c.maxAgeMs, maxMessages: c.maxMessages || 2 ** 32, maxBytes: c.maxBytes || Number.MAX_SAFE_INTEGER, maxEntries: c.maxEntries || 1000 };
    }
  }

  toString(): string {
    return `Envelope{provider:${this.#p.id} cache:${this.#cache !== undefined}}`;
  }

  /** Clears every cached key. */
  close(): void {
    for (const e of this.#entries.values()) e.m.prk.fill(0);
    this.#entries.clear();
  }

  #usable(e: CacheEntry | undefined, size: number, encrypt: boolean): boolean {
    if (!e || !this.#cache) return false;
    if (this.#now() - e.created >= this.#cache.maxAgeMs) return false;
    if (encrypt && (e.messages + 1 > this.#cache.maxMessages || e.bytes + size > this.#cache.maxBytes)) return false;
    return true;
  }

  async #material(key: string, size: number, encrypt: boolean, load: () => Promise<Material>): Promise<Material> {
    if (!this.#cache || (encrypt && size > this.#cache.maxBytes)) {
      this.providerCalls++;
      return load();
    }
    for (;;) {
      const e = this.#entries.get(key);
      if (e && this.#usable(e, size, encrypt)) {
        this.#entries.delete(key);
        this.#entries.set(key, e);
        e.messages++;
        e.bytes += size;
        return e.m;
      }
      if (e) {
        this.#entries.delete(key);
        e.m.prk.fill(0);
      }
      const f = this.#inflight.get(key);
      if (f) {
        await f.catch(() => undefined);
        if (this.#inflight.get(key) === f) this.#inflight.delete(key);
        if (!this.#entries.has(key)) return f; // the load failed, or the entry is already gone: share its outcome
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
          this.#entries.get(oldest)!.m.prk.fill(0);
          this.#entries.delete(oldest);
        }
        return m;
      } finally {
        this.#inflight.delete(key);
      }
    }
  }

  /** Encrypts plaintext under ec and returns the binary blob (format version 1). */
  async encrypt(plaintext: Uint8Array, ec: EncryptionContext = {}): Promise<Buffer> {
    const op = 'encrypt';
    if (plaintext.length > MAX_PLAINTEXT) throw err('malformed', op, 'plaintext larger than 64 MiB');
    const canon = canonicalContext(ec, op);
    const m = await this.#material('E' + canon.toString('base64'), plaintext.length, true, async () => {
      let dk: DataKey;
      try {
        dk = await this.#p.generateDataKey(ec, canon);
      } catch (e) {
        throw e instanceof EnvelopeError ? e : err('provider', op, 'generate a data key', e);
      }
      const prk = extract(dk.plaintext);
      dk.plaintext.fill(0);
      return { keyId: dk.keyId, wrapped: dk.encrypted, prk };
    });
    const keyId = Buffer.from(m.keyId, 'utf8');
    const messageId = this.#random(MESSAGE_ID_SIZE);
    const nonce = this.#random(NONCE_SIZE);
    const { ck, commit } = expand(m.prk, this.#p.id, messageId);
    const head = Buffer.alloc(84 + canon.length);
    head[0] = 1;
    head[1] = this.#p.id;
    messageId.copy(head, 2);
    head.writeUInt16BE(canon.length, 34);
    canon.copy(head, 36);
    commit.copy(head, 36 + canon.length);
    nonce.copy(head, 68 + canon.length);
    head.writeUInt32BE(plaintext.length + TAG_SIZE, 80 + canon.length);
    const keySect = Buffer.alloc(4 + keyId.length + m.wrapped.length);
    keySect.writeUInt16BE(keyId.length, 0);
    keyId.copy(keySect, 2);
    keySect.writeUInt16BE(m.wrapped.length, 2 + keyId.length);
    m.wrapped.copy(keySect, 4 + keyId.length);
    const c = createCipheriv('aes-256-gcm', ck, nonce);
    c.setAAD(head);
    const out = Buffer.concat([head, keySect, c.update(plaintext), c.final(), c.getAuthTag()]);
    ck.fill(0);
    return out;
  }

  /** Decrypts a blob (binary, or its text form) that must carry exactly the context ec. */
  async decrypt(blob: Uint8Array | string, ec: EncryptionContext = {}): Promise<Buffer> {
    const op = 'decrypt';
    const bin = typeof blob === 'string' ? decodeText(blob) : blob;
    const h = parseHeader(bin, op);
    const want = canonicalContext(ec, op);
    if (!want.equals(h.context)) throw err('context-mismatch', op);
    if (h.provider !== this.#p.id) throw err('key-not-allowed', op, `the blob's provider id ${h.provider} is not this envelope's provider`);
    if (!this.#p.allowed(h.keyId)) throw err('key-not-allowed', op, `key ${JSON.stringify(h.keyId.slice(0, 200))} is not on the allow-list`);
    const cacheKey = 'D' + createHash('sha256').update(Buffer.from([h.provider])).update(String(h.keyId.length) + ':' + h.keyId + ':' + h.wrappedKey.length + ':').update(h.wrappedKey).update(h.context).digest('base64');
    const m = await this.#material(cacheKey, 0, false, async () => {
      let dk: DataKey;
      try {
        dk = await this.#p.decryptDataKey(h.keyId, h.wrappedKey, ec, h.context);
      } catch (e) {
        throw e instanceof EnvelopeError ? e : err('provider', op, 'unwrap the data key', e);
      }
      const prk = extract(dk.plaintext);
      dk.plaintext.fill(0);
      return { keyId: h.keyId, wrapped: h.wrappedKey, prk };
    });
    const { ck, commit } = expand(m.prk, h.provider, h.messageId);
    if (!timingSafeEqual(commit, h.commitment)) {
      ck.fill(0);
      throw err('authentication', op, 'key commitment mismatch');
    }
    try {
      const d = createDecipheriv('aes-256-gcm', ck, h.nonce);
      d.setAAD(h.aad);
      d.setAuthTag(h.body.subarray(h.body.length - TAG_SIZE));
      const pt = d.update(h.body.subarray(0, h.body.length - TAG_SIZE));
      try {
        d.final();
      } catch {
        pt.fill(0);
        throw err('authentication', op);
      }
      return pt;
    } finally {
      ck.fill(0);
    }
  }
}
