// Key providers: the DataKey and Provider interfaces every provider
// implements, and the local provider (AES-256-GCM under local
// key-encryption keys). The aws-kms provider is in ../kms.ts.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { err, PROVIDER_LOCAL, type EncryptionContext } from './format.js';

const LOCAL_WRAP_AAD_V1 = Buffer.from('rotation-suite/envelope v1 local wrap');

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
