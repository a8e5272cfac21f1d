// API keys and webhook signatures in the suite's format (docs/apikey.md):
// parsing with the CRC32 checksum checked before any lookup, the verifier
// document and its records, verification with sha256 / hmac-sha256 (pepper)
// in constant time, statuses and windows, and the Webhook-Signature scheme.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { DocumentError } from './errors.js';
import { isObject, fields, optString, optInt, optTime, zeroTime, type Obj } from './json.js';

export const KEY_ID_LEN = 12;
export const BODY_LEN = 32;
export const CHECKSUM_LEN = 6;
export const MIN_PREFIX_LEN = 2;
export const MAX_PREFIX_LEN = 16;
/** The longest key accepted; anything longer is refused before parsing. */
export const MAX_KEY_LEN = MAX_PREFIX_LEN + 1 + KEY_ID_LEN + 1 + BODY_LEN + CHECKSUM_LEN;
export const SCHEMA_VERSION = 1;
export const MAX_DOC_BYTES = 64 << 10;
export const MAX_RECORDS = 256;
export const MIN_PEPPER_LEN = 32;
export const DEFAULT_SKEW_MS = 60_000;
export const SIGNATURE_HEADER_NAME = 'Webhook-Signature';
export const DEFAULT_TOLERANCE_MS = 5 * 60_000;
export const MAX_SIGNATURE_HEADER_LEN = 1024;
const MAX_SIGNATURES = 8;

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

const isBase62 = (s: string) => /^[0-9A-Za-z]*$/.test(s);

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

// ---- documents ----

const docErr = (msg: string) => new DocumentError('apikey: malformed document: ' + msg);

function readDoc(text: string, what: string): Obj {
  if (Buffer.byteLength(text, 'utf8') > MAX_DOC_BYTES) throw docErr(`${what} is more than ${MAX_DOC_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (!isObject(v)) throw docErr(`${what} is not a JSON object of the documented schema`);
  return v;
}

function schemaAndKind(o: Obj, what: string): Kind {
  const sv = optInt(o, 'schemaVersion', docErr, what) ?? 0;
  if (sv !== SCHEMA_VERSION) throw docErr(`${what} has schemaVersion ${sv}, want ${SCHEMA_VERSION}`);
  const kind = optString(o, 'kind', docErr, what) ?? '';
  if (kind !== 'apikey' && kind !== 'webhook') throw docErr(`${what} kind must be "apikey" or "webhook"`);
  return kind;
}

/** The rotated caller secret. key is absent only before the first rotation. */
export interface CallerSecret {
  kind: Kind;
  keyId?: string;
  key?: string;
  createdAt?: Date;
  expiresAt?: Date;
}

export function parseCallerSecret(text: string): CallerSecret {
  const what = 'caller secret';
  const o = fields(readDoc(text, what), ['schemaVersion', 'kind', 'keyId', 'key', 'createdAt', 'expiresAt'], docErr, what);
  const kind = schemaAndKind(o, what);
  const key = optString(o, 'key', docErr, what) ?? '';
  const keyId = optString(o, 'keyId', docErr, what) ?? '';
  const createdAt = optTime(o, 'createdAt', docErr, what);
  const expiresAt = optTime(o, 'expiresAt', docErr, what);
  const c: CallerSecret = { kind };
  if (key === '' && keyId === '' && !createdAt && !expiresAt) return c;
  let p: ParsedKey;
  try {
    p = parseKey(key);
  } catch (e) {
    throw docErr(`caller secret field key is not a well-formed key (${(e as Error).message})`);
  }
  if (p.keyId !== keyId) throw docErr('caller secret field keyId does not match the key');
  if (!createdAt || !expiresAt || !(expiresAt > createdAt)) throw docErr('caller secret needs createdAt and a later expiresAt');
  Object.assign(c, { keyId, createdAt, expiresAt });
  Object.defineProperty(c, 'key', { value: key, enumerable: false }); // kept out of JSON.stringify and console.log
  return c;
}

/** One key's verifier record. API keys carry alg and hash; webhook keys carry the key itself (secret). */
export interface VerifierRecord {
  keyId: string;
  owner?: string;
  prefix: string;
  alg?: HashAlg;
  hash?: Buffer;
  secret?: string;
  status: Status;
  notBefore: Date;
  notAfter?: Date;
}

export interface VerifierDoc {
  kind: Kind;
  pepperFingerprint?: string;
  records: VerifierRecord[];
}

export function parseVerifierDoc(text: string): VerifierDoc {
  const what = 'verifier secret';
  const o = fields(readDoc(text, what), ['schemaVersion', 'kind', 'pepperFingerprint', 'keys'], docErr, what);
  const kind = schemaAndKind(o, what);
  const keys = o.keys ?? [];
  if (!Array.isArray(keys)) throw docErr(`${what} field "keys" must be an array`);
  if (keys.length > MAX_RECORDS) throw docErr(`${what} has ${keys.length} records, more than ${MAX_RECORDS}`);
  const d: VerifierDoc = { kind, pepperFingerprint: optString(o, 'pepperFingerprint', docErr, what) || undefined, records: [] };
  const seen = new Set<string>();
  keys.forEach((rw: unknown, i: number) => {
    const r = parseRecord(rw, kind, i);
    if (seen.has(r.keyId)) throw docErr(`verifier record ${i}: duplicate keyId`);
    seen.add(r.keyId);
    d.records.push(r);
  });
  return d;
}

function parseRecord(raw: unknown, kind: Kind, i: number): VerifierRecord {
  const what = `verifier record ${i}`;
  const bad = (m: string) => docErr(`${what}: ${m}`);
  if (!isObject(raw)) throw bad('not a JSON object');
  const rw = fields(raw, ['keyId', 'owner', 'prefix', 'alg', 'hash', 'secret', 'status', 'notBefore', 'notAfter'], docErr, what);
  const keyId = optString(rw, 'keyId', docErr, what) ?? '';
  const owner = optString(rw, 'owner', docErr, what) ?? '';
  const prefix = optString(rw, 'prefix', docErr, what) ?? '';
  const alg = optString(rw, 'alg', docErr, what) ?? '';
  const hash = optString(rw, 'hash', docErr, what) ?? '';
  const secret = optString(rw, 'secret', docErr, what) ?? '';
  const status = optString(rw, 'status', docErr, what) ?? '';
  const notBefore = optTime(rw, 'notBefore', docErr, what) ?? zeroTime;
  const notAfter = optTime(rw, 'notAfter', docErr, what);
  if (keyId.length !== KEY_ID_LEN || !isBase62(keyId)) throw bad('keyId is not a key id');
  if (owner.length > 64 || !/^[0-9A-Za-z_-]*$/.test(owner)) throw bad('owner is not an owner id');
  if (!validPrefix(prefix)) throw bad('prefix is not a valid prefix');
  if (status !== 'active' && status !== 'retiring' && status !== 'revoked') throw bad('status must be active, retiring or revoked');
  const r: VerifierRecord = { keyId, prefix, status, notBefore };
  if (owner) r.owner = owner;
  if (notAfter) r.notAfter = notAfter;
  if (kind === 'apikey') {
    if (secret !== '') throw bad('an API-key record must not hold the key');
    if (alg !== 'sha256' && alg !== 'hmac-sha256') throw bad('alg must be sha256 or hmac-sha256');
    const h = /^[A-Za-z0-9_-]*$/.test(hash) && hash.length % 4 !== 1 ? Buffer.from(hash, 'base64url') : undefined;
    if (!h || h.length !== 32 || h.toString('base64url') !== hash) throw bad('hash is not 32 bytes of unpadded base64url');
    r.alg = alg;
    r.hash = h;
  } else {
    if (hash !== '' || alg !== '') throw bad('a webhook record holds its key in secret, not a hash');
    if (secret === '') {
      if (status !== 'revoked') throw bad('a live webhook record needs its secret');
    } else {
      let p: ParsedKey | undefined;
      try {
        p = parseKey(secret);
      } catch {
        p = undefined;
      }
      if (!p || p.keyId !== keyId || p.prefix !== prefix) throw bad('secret is not the well-formed key of this record');
      Object.defineProperty(r, 'secret', { value: secret, enumerable: false });
    }
  }
  return r;
}

// ---- verification ----

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

// ---- webhook signatures ----

interface ParsedSignature { ts: string; unix: number; sigs: Buffer[] }

function parseSignatureHeader(h: string): ParsedSignature {
  if (h.length > MAX_SIGNATURE_HEADER_LEN || Buffer.byteLength(h, 'utf8') > MAX_SIGNATURE_HEADER_LEN) throw new ApiKeyError('oversized');
  let ts: string | undefined;
  let unix = 0;
  const sigs: Buffer[] = [];
  if (h !== '') {
    for (const part of h.split(',')) {
      const t = part.trim();
      const eq = t.indexOf('=');
      if (eq < 0) throw new ApiKeyError('malformed');
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === 't') {
        // As Go's strconv.ParseInt: optional sign, decimal digits, within int64; here also > 0.
        if (ts !== undefined || v.length > 20 || !/^\+?[0-9]+$/.test(v)) throw new ApiKeyError('malformed');
        const b = BigInt(v);
        if (b <= 0n || b > 9223372036854775807n) throw new ApiKeyError('malformed');
        ts = v;
        unix = Number(b);
      } else if (k === 'v1') {
        if (sigs.length === MAX_SIGNATURES || !/^[0-9a-fA-F]{64}$/.test(v)) throw new ApiKeyError('malformed');
        sigs.push(Buffer.from(v, 'hex'));
      }
      // Other schemes (v0, future versions) are ignored.
    }
  }
  if (ts === undefined || sigs.length === 0) throw new ApiKeyError('malformed');
  return { ts, unix, sigs };
}

function fresh(p: ParsedSignature, now: Date, toleranceMs: number): boolean {
  const d = now.getTime() - p.unix * 1000;
  return d <= toleranceMs && d >= -toleranceMs;
}

function matches(secret: string | Uint8Array, p: ParsedSignature, body: Uint8Array | string): boolean {
  const sum = createHmac('sha256', secret).update(p.ts).update('.').update(body).digest();
  let ok = false;
  // Compare with every signature, so timing does not say which matched.
  for (const s of p.sigs) if (timingSafeEqual(sum, s)) ok = true;
  return ok;
}

/** The signature header for body at time t: "t=<unix>,v1=<hex HMAC-SHA-256 of "t.body">" keyed with secret. */
export function signatureHeader(secret: string | Uint8Array, t: Date, body: Uint8Array | string): string {
  const ts = String(Math.floor(t.getTime() / 1000));
  return `t=${ts},v1=` + createHmac('sha256', secret).update(ts).update('.').update(body).digest('hex');
}

/** Signs body with a webhook signing key (the whole key string). */
export function signWebhook(key: string, t: Date, body: Uint8Array | string): string {
  return signatureHeader(key, t, body);
}

/** Checks a signature header over body with one shared secret (e.g. a registration endpoint's HMAC key). */
export function verifySignatureHeader(secret: string | Uint8Array, header: string, body: Uint8Array | string, now: Date = new Date(), toleranceMs = DEFAULT_TOLERANCE_MS): void {
  const p = parseSignatureHeader(header);
  if (!fresh(p, now, toleranceMs)) throw new ApiKeyError('stale');
  if (!matches(secret, p, body)) throw new ApiKeyError('bad-signature');
}
