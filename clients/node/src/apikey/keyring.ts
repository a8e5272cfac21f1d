// The Keyring: verification of presented API keys and webhook signatures
// against one verifier document — hashes compared in constant time, then the
// record's status and validity window (with clock skew on notBefore only).

import { timingSafeEqual } from 'node:crypto';
import { ApiKeyError, hashKey, parseKey, pepperFingerprint, MIN_PEPPER_LEN, type Kind } from './format.js';
import type { VerifierDoc, VerifierRecord } from './records.js';
import { DEFAULT_TOLERANCE_MS, fresh, matches, parseSignatureHeader } from './webhook.js';

export const DEFAULT_SKEW_MS = 60_000;

export interface KeyringOptions {
  /** How much earlier than notBefore a key is accepted (default 1 minute). notAfter is never stretched. */
  skewMs?: number;
}

/** Verifies keys and webhook signatures against one verifier document; immutable. */
export class Keyring {
  readonly kind: Kind;
  readonly #byId = new Map<string, VerifierRecord>();
  readonly #prefixes = new Set<string>();
  readonly #live: VerifierRecord[] = [];
  readonly #pepper?: Buffer;
  readonly #skew: number;

  /** pepper is required when any record uses hmac-sha256 and must match the document's pepperFingerprint. */
  constructor(doc: VerifierDoc, pepper?: Uint8Array, opts: KeyringOptions = {}) {
    this.kind = doc.kind;
    this.#skew = opts.skewMs ?? DEFAULT_SKEW_MS;
    let needPepper = false;
    for (const r of doc.records) {
      this.#byId.set(r.keyId, r);
      if (r.alg === 'hmac-sha256') needPepper = true;
      if (r.status !== 'revoked') {
        this.#prefixes.add(r.prefix);
        if (doc.kind === 'webhook') this.#live.push(r);
      }
    }
    if (needPepper) {
      if (!pepper || pepper.length < MIN_PEPPER_LEN) throw new Error('apikey: the verifier records use hmac-sha256 but no pepper (of at least 32 bytes) was given');
      if (doc.pepperFingerprint !== pepperFingerprint(pepper)) throw new Error("apikey: the pepper does not match the verifier document's pepperFingerprint");
      this.#pepper = Buffer.from(pepper);
    }
  }

  /**
   * Checks a presented API key at now: length, format and checksum first (no lookup for a typo), then a
   * prefix this document uses, the record by key id, the hash in constant time, then status and window.
   * Returns the key id; throws ApiKeyError (with keyId set once the key has matched its record).
   */
  verify(key: string, now: Date = new Date()): string {
    const p = parseKey(key);
    if (this.kind !== 'apikey' || !this.#prefixes.has(p.prefix)) throw new ApiKeyError('wrong-prefix');
    const r = this.#byId.get(p.keyId);
    if (!r || !r.hash || !r.alg) throw new ApiKeyError('unknown-key');
    const got = hashKey(r.alg, this.#pepper, key);
    if (!timingSafeEqual(got, r.hash)) throw new ApiKeyError('mismatch');
    check(r, now, this.#skew);
    return r.keyId;
  }

  /**
   * Checks a Webhook-Signature header over body against every live key at now (during the overlap: the
   * current and the previous key). Returns the key id that verified.
   */
  verifySignature(header: string, body: Uint8Array | string, now: Date = new Date(), toleranceMs = DEFAULT_TOLERANCE_MS): string {
    if (this.kind !== 'webhook') throw new ApiKeyError('wrong-prefix');
    const p = parseSignatureHeader(header);
    if (!fresh(p, now, toleranceMs)) throw new ApiKeyError('stale');
    let found = '';
    for (const r of this.#live) {
      if (!r.secret) continue;
      try {
        check(r, now, this.#skew);
      } catch {
        continue;
      }
      if (matches(r.secret, p, body) && found === '') found = r.keyId;
    }
    if (found === '') throw new ApiKeyError('bad-signature');
    return found;
  }

  /** The key ids that verify at now. */
  live(now: Date = new Date()): string[] {
    const ids: string[] = [];
    for (const r of this.#byId.values()) {
      try {
        check(r, now, this.#skew);
        ids.push(r.keyId);
      } catch {
        // not live
      }
    }
    return ids.sort();
  }

  toString(): string {
    return `Keyring{kind: ${this.kind}, records: ${this.#byId.size}}`;
  }
}

function check(r: VerifierRecord, now: Date, skew: number): void {
  if (r.status === 'revoked') throw new ApiKeyError('revoked', r.keyId);
  if (now.getTime() + skew < r.notBefore.getTime()) throw new ApiKeyError('not-yet-valid', r.keyId);
  if (r.notAfter && now.getTime() >= r.notAfter.getTime()) throw new ApiKeyError('expired', r.keyId);
}
