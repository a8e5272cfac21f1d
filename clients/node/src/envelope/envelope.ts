// The Envelope: encryption and decryption of blobs of either version with
// data keys from one provider, and the optional data-key cache (age, message
// and byte limits, LRU eviction, one provider call per key in flight, v2
// nonce counting). Formats, derivation and providers are in the modules
// beside this one.

import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { err, EnvelopeError, MAX_BYTES_PER_DATA_KEY, MAX_KEY_ID, MAX_MESSAGES_PER_DATA_KEY, MAX_PLAINTEXT, MAX_WRAPPED, MESSAGE_ID_SIZE, NONCE_SIZE, TAG_SIZE, type EncryptionContext } from './format.js';
import { canonicalContext } from './context.js';
import { parseHeader } from './header.js';
import { decodeText } from './text.js';
import type { DataKey, Provider } from './providers.js';
import { expand, materialV1, materialV2, sealV2, u16, wipe, type Material } from './keys.js';

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
