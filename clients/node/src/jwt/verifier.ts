// JwtVerifier: verification of JWTs against the JWK Set of a source, as
// pkg/jwks.Verifier — algorithms pinned, kid and exp required, the set
// reloaded after refreshMs and, rate-limited, on an unknown kid.

import { decodeProtectedHeader, jwtVerify, type JWTVerifyOptions, type JWTVerifyResult } from 'jose';
import { checkAlgorithm, type Algorithm, type PublicKey } from './jwk.js';
import { extractJwkSet } from './keyring.js';
import { Reloader } from './reload.js';

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
  readonly #reload = new Reloader(() => this.#cfg.now());
  #keys = new Map<string, PublicKey>();
  #raw?: string;
  /** Source reads made (for tests and metrics). */
  loads = 0;

  private constructor(cfg: Required<JwtVerifierConfig>) {
    this.#cfg = cfg;
  }

  /** The error of the last reload; undefined once one succeeds. */
  get lastError(): unknown {
    return this.#reload.lastError;
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
    return this.#reload.run(async () => {
      this.loads++;
      const raw = await (forced ? this.#cfg.forcedSource : this.#cfg.source)();
      if (raw !== this.#raw) {
        this.#keys = await extractJwkSet(raw);
        this.#raw = raw;
      }
    });
  }

  async #lookup(kid: string): Promise<PublicKey> {
    const now = this.#cfg.now();
    if (now - this.#reload.loadedAt >= this.#cfg.refreshMs && now - this.#reload.lastTry >= this.#cfg.minRefreshIntervalMs) await this.refresh().catch(() => undefined);
    let k = this.#keys.get(kid);
    if (k) return k;
    if (this.#reload.inflight) await this.#reload.inflight.catch(() => undefined);
    k = this.#keys.get(kid);
    if (k) return k;
    const since = this.#cfg.now() - this.#reload.lastTry;
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
