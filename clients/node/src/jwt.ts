// JWT signing keys as jwtrotate writes them (docs/jwt.md): the keyring
// document with its validation rules, a verifier on the JWK Set with pinned
// algorithms and a rate-limited reload on an unknown kid, and a signer that
// opens the keyring's active private key (envelope + KMS under the
// documented context) and signs with its kid — the rules of pkg/jwks.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SignJWT, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult } from 'jose';
import { DocumentError } from './errors.js';
import { decodeText, type Envelope } from './envelope.js';
import type { SecretCache } from './cache.js';
import { isObject, fields, optInt, optString, optTime, type Obj } from './json.js';

export const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];
export const JWT_SCHEMA_VERSION = 1;

const malformed = (msg: string) => new DocumentError('malformed: ' + msg);

export function checkAlgorithm(alg: string): asserts alg is Algorithm {
  if (!(ALGORITHMS as readonly string[]).includes(alg)) throw malformed(`algorithm "${alg.slice(0, 20)}" is not supported (use one of ${ALGORITHMS.join(', ')})`);
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function b64len(s: unknown): number {
  return typeof s === 'string' && /^[A-Za-z0-9_-]+$/.test(s) ? Buffer.from(s, 'base64url').length : -1;
}

/** A public signing key of the set: its kid (the RFC 7638 thumbprint), alg and parsed key. */
export interface PublicKey {
  kid: string;
  alg: Algorithm;
  jwk: JWK;
  key: KeyObject;
}

/**
 * Parses one JWK that must be public, as pkg/jwks.ParsePublicJWK: no private members, a supported key that
 * fits its alg (EC P-256 with 32-byte coordinates, RSA of 2048 bits or more, Ed25519), kid = its thumbprint,
 * use "sig" when present.
 */
export async function parsePublicJWK(raw: unknown): Promise<PublicKey> {
  if (!isObject(raw)) throw malformed('a JWK is not a JSON object');
  const kid = typeof raw.kid === 'string' ? raw.kid : '';
  const priv = PRIVATE_MEMBERS.filter((m) => m in raw).sort();
  if (priv.length) throw malformed(`the JWK with kid "${kid}" has private members [${priv.join(' ')}]; a JWK Set must hold public keys only`);
  const alg = typeof raw.alg === 'string' ? raw.alg : '';
  checkAlgorithm(alg);
  const bad = (why: string) => malformed(`the JWK with kid "${kid}": ${why}`);
  switch (alg) {
    case 'ES256':
      if (raw.kty !== 'EC' || raw.crv !== 'P-256') throw bad('an ES256 key must be an EC P-256 key');
      if (b64len(raw.x) !== 32 || b64len(raw.y) !== 32) throw bad('EC coordinates must be 32 bytes');
      break;
    case 'RS256': {
      if (raw.kty !== 'RSA') throw bad('an RS256 key must be an RSA key');
      const n = typeof raw.n === 'string' ? Buffer.from(raw.n, 'base64url') : Buffer.alloc(0);
      const bits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]));
      if (bits < 2048 || b64len(raw.e) < 1) throw bad(`an RS256 key must have at least 2048 bits, has ${bits}`);
      break;
    }
    case 'EdDSA':
      if (raw.kty !== 'OKP' || raw.crv !== 'Ed25519' || b64len(raw.x) !== 32) throw bad('an EdDSA key must be an Ed25519 key');
      break;
  }
  if (raw.use !== undefined && raw.use !== 'sig') throw bad(`use must be "sig"`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: raw as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw bad('does not parse');
  }
  const tp = await calculateJwkThumbprint(raw as JWK, 'sha256');
  if (kid !== tp) throw malformed(`the JWK's kid "${kid}" is not its RFC 7638 thumbprint "${tp}"`);
  return { kid, alg, jwk: raw as JWK, key };
}

/** Parses a JWK Set ({"keys":[…]}), every key with parsePublicJWK; kids are unique. */
export async function parseJwkSet(raw: unknown): Promise<Map<string, PublicKey>> {
  if (!isObject(raw) || !Array.isArray(raw.keys)) throw malformed('the JWK Set is not a JSON object with a "keys" array');
  const keys = new Map<string, PublicKey>();
  for (const k of raw.keys) {
    const p = await parsePublicJWK(k);
    if (keys.has(p.kid)) throw malformed(`the JWK Set holds kid "${p.kid}" twice`);
    keys.set(p.kid, p);
  }
  return keys;
}

export interface SigningKey {
  kid: string;
  alg: Algorithm;
  /** The PKCS #8 key sealed with the envelope ("env1:…"); not enumerable, so it stays out of logs and JSON. */
  privateKey: string;
  publicJwk: JWK;
  createdAt?: Date;
  publishedAt?: Date;
  activatedAt?: Date;
}

export interface RetiredKey {
  kid: string;
  alg: Algorithm;
  publicJwk: JWK;
  retiredAt?: Date;
  removeAfter?: Date;
}

/** The JWT signing-key secret (docs/jwt.md, schema version 1). A document without keys is a new secret. */
export interface JwtKeyring {
  schemaVersion: number;
  algorithm?: Algorithm;
  active?: SigningKey;
  next?: SigningKey;
  retired: RetiredKey[];
  jwks?: { keys: JWK[] };
  emergencyRekey?: { nonce: string; handledAt?: Date; dropped: { kid: string }[] };
}

function signingKey(raw: unknown, role: string): SigningKey {
  const what = `the ${role} key`;
  if (!isObject(raw)) throw malformed(`${what} is not a JSON object`);
  const o = fields(raw, ['kid', 'alg', 'privateKey', 'publicJwk', 'createdAt', 'publishedAt', 'activatedAt'], malformed, what);
  const k = {
    kid: optString(o, 'kid', malformed, what) ?? '',
    alg: (optString(o, 'alg', malformed, what) ?? '') as Algorithm,
    publicJwk: o.publicJwk as JWK,
    createdAt: optTime(o, 'createdAt', malformed, what),
    publishedAt: optTime(o, 'publishedAt', malformed, what),
    activatedAt: optTime(o, 'activatedAt', malformed, what),
  } as SigningKey;
  Object.defineProperty(k, 'privateKey', { value: optString(o, 'privateKey', malformed, what) ?? '', enumerable: false });
  return k;
}

/** Parses and validates a signing-key secret with the rules of pkg/jwks.ParseDocument / Validate. */
export async function parseJwtKeyring(text: string): Promise<JwtKeyring> {
  if (text.trim() === '') return { schemaVersion: 0, retired: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw malformed('the secret value is not a JWT key document: invalid JSON');
  }
  if (!isObject(parsed)) throw malformed('the secret value is not a JWT key document');
  const what = 'the JWT key document';
  const o = fields(parsed, ['schemaVersion', 'algorithm', 'active', 'next', 'retired', 'jwks', 'emergencyRekey'], malformed, what);
  const d: JwtKeyring = { schemaVersion: optInt(o, 'schemaVersion', malformed, what) ?? 0, retired: [] };
  if (d.schemaVersion > JWT_SCHEMA_VERSION || d.schemaVersion < 0) throw malformed(`schemaVersion ${d.schemaVersion} is not supported (this code reads ${JWT_SCHEMA_VERSION})`);
  const alg = optString(o, 'algorithm', malformed, what);
  if (alg) {
    checkAlgorithm(alg);
    d.algorithm = alg;
  }
  if (o.active != null) d.active = signingKey(o.active, 'active');
  if (o.next != null) d.next = signingKey(o.next, 'next');
  if (o.retired != null) {
    if (!Array.isArray(o.retired)) throw malformed('retired must be an array');
    d.retired = o.retired.map((rr: unknown) => {
      if (!isObject(rr)) throw malformed('a retired key is not a JSON object');
      const r = fields(rr, ['kid', 'alg', 'publicJwk', 'retiredAt', 'removeAfter'], malformed, 'a retired key');
      return {
        kid: optString(r, 'kid', malformed, 'a retired key') ?? '',
        alg: (optString(r, 'alg', malformed, 'a retired key') ?? '') as Algorithm,
        publicJwk: r.publicJwk as JWK,
        retiredAt: optTime(r, 'retiredAt', malformed, 'a retired key'),
        removeAfter: optTime(r, 'removeAfter', malformed, 'a retired key'),
      };
    });
  }
  if (o.jwks != null) {
    if (!isObject(o.jwks)) throw malformed('jwks is not a JSON object');
    d.jwks = fields(o.jwks, ['keys'], malformed, 'jwks') as { keys: JWK[] };
  }
  if (o.emergencyRekey != null) {
    if (!isObject(o.emergencyRekey)) throw malformed('emergencyRekey is not a JSON object');
    const r: Obj = fields(o.emergencyRekey, ['nonce', 'handledAt', 'dropped'], malformed, 'emergencyRekey');
    const dropped = Array.isArray(r.dropped) ? r.dropped : [];
    d.emergencyRekey = {
      nonce: optString(r, 'nonce', malformed, 'emergencyRekey') ?? '',
      handledAt: optTime(r, 'handledAt', malformed, 'emergencyRekey'),
      dropped: dropped.map((x: unknown) => {
        if (!isObject(x)) throw malformed('emergencyRekey.dropped holds a non-object');
        return { kid: optString(fields(x, ['kid'], malformed, 'emergencyRekey.dropped'), 'kid', malformed, 'emergencyRekey.dropped') ?? '' };
      }),
    };
  }
  await validate(d);
  return d;
}

async function validate(d: JwtKeyring): Promise<void> {
  if (!d.active && !d.next) {
    if (d.retired.length > 0 || d.jwks) throw malformed('the document has retired keys or a JWK Set but no active and next key');
    return;
  }
  if (d.schemaVersion !== JWT_SCHEMA_VERSION) throw malformed(`a document with keys needs schemaVersion ${JWT_SCHEMA_VERSION}`);
  if (!d.active || !d.next) throw malformed('the document must have both an active and a next key');
  if (!d.jwks) throw malformed('the document has no JWK Set');
  const set = await parseJwkSet(d.jwks);
  const want = new Set<string>();
  const add = async (role: string, kid: string, alg: string, jwk: unknown) => {
    const k = await parsePublicJWK(jwk);
    if (k.kid !== kid || k.alg !== alg) throw malformed(`the ${role} key's kid/alg ("${kid}", "${alg}") differ from its JWK's ("${k.kid}", "${k.alg}")`);
    if (want.has(kid)) throw malformed(`kid "${kid}" appears twice among the active, next and retired keys`);
    want.add(kid);
  };
  for (const [role, k] of [['active', d.active], ['next', d.next]] as const) {
    if (!k.privateKey) throw malformed(`the ${role} key "${k.kid}" has no private key`);
    await add(role, k.kid, k.alg, k.publicJwk);
  }
  for (const r of d.retired) await add('retired', r.kid, r.alg, r.publicJwk);
  for (const kid of want) if (!set.has(kid)) throw malformed(`the JWK Set lacks kid "${kid}"`);
  for (const kid of set.keys()) if (!want.has(kid)) throw malformed(`the JWK Set holds kid "${kid}" that is neither active, next nor retired`);
}

/** The encryption context a signing key is sealed under: it names the secret and the kid. */
export function keyContext(secretName: string, kid: string): Record<string, string> {
  return { purpose: 'jwt-signing-key', secret: secretName, kid };
}

/** Thrown when an opened private key is not the key its kid names. */
export class KeyMismatchError extends Error {
  override name = 'KeyMismatchError';
}

/** Opens k's private key (one decrypt under keyContext(secretName, k.kid)) and checks it is the key its kid names and fits its alg. */
export async function openSigningKey(env: Envelope, secretName: string, k: SigningKey): Promise<KeyObject> {
  const der = await env.decrypt(decodeText(k.privateKey), keyContext(secretName, k.kid));
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw malformed(`the opened private key of kid "${k.kid}" is not PKCS #8`);
  } finally {
    der.fill(0);
  }
  const pub = createPublicKey(key).export({ format: 'jwk' }) as JWK;
  const want = { ES256: 'ec', RS256: 'rsa', EdDSA: 'ed25519' }[k.alg];
  if (key.asymmetricKeyType !== want || (k.alg === 'ES256' && pub.crv !== 'P-256') || (k.alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)) {
    throw malformed(`kid "${k.kid}": the private key does not fit ${k.alg}`);
  }
  const tp = await calculateJwkThumbprint(pub, 'sha256');
  if (tp !== k.kid) throw new KeyMismatchError(`private key does not match its kid: kid "${k.kid}" opened to a key whose thumbprint is "${tp}"`);
  return key;
}

// ---- reading AWSCURRENT ----

/** Reads the AWSCURRENT value of a secret: its name and SecretString. */
export type SecretReader = () => Promise<{ name: string; value: string }>;

/** A SecretReader through the service's SecretCache (a fresh value from memory; the cache refreshes it). */
export function cachedSecret(cache: SecretCache, secretId: string): SecretReader {
  return async () => {
    const v = await cache.get(secretId);
    return { name: v.name, value: v.value };
  };
}

/** The source and forced source of a secret's text through a SecretCache (for JwtVerifier and ApiKeyVerifier). */
export function fromCache(cache: SecretCache, secretId: string): { source: () => Promise<string>; forcedSource: () => Promise<string> } {
  return { source: async () => (await cache.get(secretId)).value, forcedSource: async () => (await cache.refresh(secretId)).value };
}

export function currentSecret(sm: SecretsManagerClient, secretId: string): SecretReader {
  return async () => {
    const out = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
    return { name: out.Name ?? '', value: out.SecretString ?? '' };
  };
}

/** Returns the JWK Set inside raw, which is a bare set or a whole signing-key document. */
export async function extractJwkSet(raw: string): Promise<Map<string, PublicKey>> {
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch {
    o = undefined;
  }
  if (!isObject(o)) throw malformed('the JWK Set source is not a JSON object');
  if ('keys' in o) return parseJwkSet(o);
  const doc = await parseJwtKeyring(raw);
  if (!doc.jwks) throw malformed('the signing-key secret has no JWK Set yet (it was never rotated)');
  return parseJwkSet(doc.jwks);
}

// ---- verifier ----

export interface JwtVerifierConfig {
  /** Returns the JWK Set or a signing-key document: secretReader(sm, id), or the source of fromCache(cache, id). */
  source: () => Promise<string>;
  /** Reads anew for an unknown kid (default: source). With a SecretCache: its refresh (see fromCache). */
  forcedSource?: () => Promise<string>;
  /** The only algorithms accepted (RFC 8725 §3.1); required. */
  algorithms: Algorithm[];
  /** How long a loaded set is used before it is read again (default 5 minutes). */
  refreshMs?: number;
  /** The floor between reloads caused by unknown kids (default 30 s). */
  minRefreshIntervalMs?: number;
  now?: () => number;
}

/** Verifies JWTs against a JWK Set, as pkg/jwks.Verifier. */
export class JwtVerifier {
  readonly #cfg: Required<JwtVerifierConfig>;
  #keys = new Map<string, PublicKey>();
  #loadedAt = 0;
  #lastTry = 0;
  #inflight?: Promise<void>;
  #raw?: string;
  lastError?: unknown;
  /** Source reads made (for tests and metrics). */
  loads = 0;

  private constructor(cfg: Required<JwtVerifierConfig>) {
    this.#cfg = cfg;
  }

  /** Loads the set once and returns the verifier. */
  static async create(cfg: JwtVerifierConfig): Promise<JwtVerifier> {
    if (!cfg.source) throw new Error('jwks: source is required');
    if (!cfg.algorithms?.length) throw new Error('jwks: algorithms is required: pin the algorithms you accept');
    for (const a of cfg.algorithms) checkAlgorithm(a);
    const v = new JwtVerifier({ refreshMs: 5 * 60_000, minRefreshIntervalMs: 30_000, now: Date.now, forcedSource: cfg.source, ...cfg });
    await v.refresh();
    return v;
  }

  /** Reloads the set now (concurrent callers share one read). A failed reload keeps the last good set. */
  refresh(forced = false): Promise<void> {
    this.#inflight ??= (async () => {
      this.#lastTry = this.#cfg.now();
      this.loads++;
      try {
        const raw = await (forced ? this.#cfg.forcedSource : this.#cfg.source)();
        if (raw !== this.#raw) {
          this.#keys = await extractJwkSet(raw);
          this.#raw = raw;
        }
        this.#loadedAt = this.#cfg.now();
        this.lastError = undefined;
      } catch (e) {
        this.lastError = e;
        throw e;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  async #lookup(kid: string): Promise<PublicKey> {
    const now = this.#cfg.now();
    if (now - this.#loadedAt >= this.#cfg.refreshMs && now - this.#lastTry >= this.#cfg.minRefreshIntervalMs) await this.refresh().catch(() => undefined);
    let k = this.#keys.get(kid);
    if (k) return k;
    if (this.#inflight) await this.#inflight.catch(() => undefined);
    k = this.#keys.get(kid);
    if (k) return k;
    const since = this.#cfg.now() - this.#lastTry;
    if (since < this.#cfg.minRefreshIntervalMs) throw new Error(`jwks: unknown kid "${kid.slice(0, 100)}" (the set was reloaded ${Math.round(since / 1000)}s ago)`);
    try {
      await this.refresh(true);
    } catch (e) {
      throw new Error(`jwks: unknown kid "${kid.slice(0, 100)}" and the set could not be reloaded`, { cause: e });
    }
    k = this.#keys.get(kid);
    if (!k) throw new Error(`jwks: unknown kid "${kid.slice(0, 100)}"`);
    return k;
  }

  /**
   * Verifies token: the algorithm pinned, a kid required, the token's alg equal to its key's, exp required.
   * options may add issuer, audience, clockTolerance and the like.
   */
  async verify(token: string, options: JWTVerifyOptions = {}): Promise<JWTVerifyResult> {
    const header = decodeProtectedHeader(token);
    const alg = String(header.alg ?? '');
    if (!(this.#cfg.algorithms as string[]).includes(alg)) throw new Error(`jwks: algorithm "${alg.slice(0, 20)}" is not accepted`);
    if (typeof header.kid !== 'string' || header.kid === '') throw new Error('jwks: the token has no kid');
    const k = await this.#lookup(header.kid);
    if (k.alg !== alg) throw new Error(`jwks: the token's alg "${alg}" differs from key "${k.kid}"'s alg "${k.alg}"`);
    const req = new Set([...(options.requiredClaims ?? []), 'exp']);
    return jwtVerify(token, k.key, { currentDate: new Date(this.#cfg.now()), ...options, algorithms: [alg], requiredClaims: [...req] });
  }

  /** The kids of the loaded set, sorted. */
  keyIds(): string[] {
    return [...this.#keys.keys()].sort();
  }
}

// ---- signer ----

export interface JwtSignerConfig {
  /** Reads AWSCURRENT of the signing-key secret: currentSecret(sm, id), or cachedSecret(cache, id). */
  secret: SecretReader;
  /** Opens the private key (an Envelope over the KMS provider, kms:Decrypt). */
  envelope: Envelope;
  /** How long a loaded key is used before AWSCURRENT is read again (default 5 minutes; keep it ≤ JWT_SIGNER_CACHE). */
  refreshMs?: number;
  /** How long the loaded key may still sign while refreshes fail (default refreshMs). */
  maxStaleMs?: number;
  /** Spacing of failed refresh attempts (default 10 s). */
  retryIntervalMs?: number;
  now?: () => number;
}

/** Signs JWTs with the active key of a signing-key secret, as pkg/jwks.Signer. */
export class JwtSigner {
  readonly #cfg: Required<JwtSignerConfig>;
  #key?: KeyObject;
  #kid = '';
  #alg: Algorithm = 'ES256';
  #loadedAt = 0;
  #lastTry = 0;
  #inflight?: Promise<void>;
  #raw?: string;
  lastError?: unknown;
  /** Private keys opened (kms:Decrypt calls), for tests and metrics. */
  opens = 0;

  private constructor(cfg: Required<JwtSignerConfig>) {
    this.#cfg = cfg;
  }

  static async create(cfg: JwtSignerConfig): Promise<JwtSigner> {
    if (!cfg.secret || !cfg.envelope) throw new Error('jwks: the signer needs secret and envelope');
    const refreshMs = cfg.refreshMs && cfg.refreshMs > 0 ? cfg.refreshMs : 5 * 60_000;
    const s = new JwtSigner({ now: Date.now, retryIntervalMs: 10_000, ...cfg, refreshMs, maxStaleMs: cfg.maxStaleMs && cfg.maxStaleMs > 0 ? cfg.maxStaleMs : refreshMs });
    await s.refresh();
    return s;
  }

  /** Reads AWSCURRENT and opens its active key now. */
  refresh(): Promise<void> {
    this.#inflight ??= (async () => {
      this.#lastTry = this.#cfg.now();
      try {
        const { name, value } = await this.#cfg.secret();
        if (value !== this.#raw) {
          // A new version: parse it and open its active key (an unchanged value keeps the opened key).
          const doc = await parseJwtKeyring(value);
          if (!doc.active) throw new Error(`jwks: secret ${name} has no active key yet (it was never rotated)`);
          this.opens++;
          this.#key = await openSigningKey(this.#cfg.envelope, name, doc.active);
          this.#kid = doc.active.kid;
          this.#alg = doc.active.alg;
          this.#raw = value;
        }
        this.#loadedAt = this.#cfg.now();
        this.lastError = undefined;
      } catch (e) {
        this.lastError = e;
        throw e;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  get keyId(): string {
    return this.#kid;
  }

  /** Signs claims with the active key ("kid" and "typ":"JWT" in the header), refreshing it first when it is older than refreshMs. */
  async sign(claims: JWTPayload): Promise<string> {
    const now = this.#cfg.now();
    let age = now - this.#loadedAt;
    if (age >= this.#cfg.refreshMs && now - this.#lastTry >= Math.min(this.#cfg.retryIntervalMs, this.#cfg.refreshMs)) {
      await this.refresh().catch(() => undefined);
      age = this.#cfg.now() - this.#loadedAt;
    } else if (this.#inflight) {
      await this.#inflight.catch(() => undefined);
    }
    if (age >= this.#cfg.refreshMs + this.#cfg.maxStaleMs || !this.#key) {
      throw new Error(`jwks: the signing key is ${Math.round(age / 1000)}s old and could not be refreshed`, { cause: this.lastError });
    }
    return new SignJWT(claims).setProtectedHeader({ alg: this.#alg, kid: this.#kid, typ: 'JWT' }).sign(this.#key);
  }
}

