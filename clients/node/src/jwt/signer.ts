// JwtSigner: signing with the active key of a signing-key secret, as
// pkg/jwks.Signer — the key opened with the envelope under its documented
// context and checked against its kid, reopened only when AWSCURRENT
// changes, and refused once it is older than refreshMs + maxStaleMs.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, type JWK, type JWTPayload } from 'jose';
import { decodeText, type Envelope } from '../envelope.js';
import { malformed, type Algorithm } from './jwk.js';
import { parseJwtKeyring, type SigningKey } from './keyring.js';
import { Reloader } from './reload.js';
import type { SecretReader } from './source.js';

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
  readonly #reload = new Reloader(() => this.#cfg.now());
  #raw?: string;
  /** Private keys opened (kms:Decrypt calls), for tests and metrics. */
  opens = 0;

  private constructor(cfg: Required<JwtSignerConfig>) {
    this.#cfg = cfg;
  }

  /** The error of the last refresh; undefined once one succeeds. */
  get lastError(): unknown {
    return this.#reload.lastError;
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
    return this.#reload.run(async () => {
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
    });
  }

  get keyId(): string {
    return this.#kid;
  }

  /** Signs claims with the active key ("kid" and "typ":"JWT" in the header), refreshing it first when it is older than refreshMs. */
  async sign(claims: JWTPayload): Promise<string> {
    const now = this.#cfg.now();
    let age = now - this.#reload.loadedAt;
    if (age >= this.#cfg.refreshMs && now - this.#reload.lastTry >= Math.min(this.#cfg.retryIntervalMs, this.#cfg.refreshMs)) {
      await this.refresh().catch(() => undefined);
      age = this.#cfg.now() - this.#reload.loadedAt;
    } else if (this.#reload.inflight) {
      await this.#reload.inflight.catch(() => undefined);
    }
    if (age >= this.#cfg.refreshMs + this.#cfg.maxStaleMs || !this.#key) {
      throw new Error(`jwks: the signing key is ${Math.round(age / 1000)}s old and could not be refreshed`, { cause: this.lastError });
    }
    return new SignJWT(claims).setProtectedHeader({ alg: this.#alg, kid: this.#kid, typ: 'JWT' }).sign(this.#key);
  }
}
