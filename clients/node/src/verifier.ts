// A receiving service's view of a verifier secret, as pkg/apikey.Verifier:
// the records reloaded in the background after refreshMs, before use after
// twice that, and on an unknown key id at most every missRefreshMs (a caller
// that switched to a new key before this service reloaded is not refused);
// a failed reload keeps the records it has and is not retried for
// missRefreshMs (at least a second). The pepper comes from its own secret.

import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApiKeyError, Keyring, parseVerifierDoc, DEFAULT_SKEW_MS, DEFAULT_TOLERANCE_MS } from './apikey.js';

export interface ApiKeyVerifierConfig {
  /** Reads the verifier secret's AWSCURRENT SecretString: secretReader(sm, id), or the source of fromCache(cache, id). */
  source: () => Promise<string>;
  /** Reads anew for an unknown key id (default: source). With a SecretCache: its refresh (see fromCache). */
  forcedSource?: () => Promise<string>;
  /** Reads the pepper (the pepper secret's value) when records use hmac-sha256. */
  pepper?: () => Promise<Uint8Array>;
  refreshMs?: number;
  missRefreshMs?: number;
  skewMs?: number;
  now?: () => number;
}

/** Reads AWSCURRENT of a secret as text (explicitly by stage). */
export function secretReader(sm: SecretsManagerClient, secretId: string): () => Promise<string> {
  return async () => {
    const out = await sm.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
    if (out.SecretString !== undefined) return out.SecretString;
    return Buffer.from(out.SecretBinary ?? new Uint8Array()).toString('utf8');
  };
}

type ResolvedConfig = Required<Omit<ApiKeyVerifierConfig, 'pepper' | 'forcedSource'>> & Pick<ApiKeyVerifierConfig, 'pepper' | 'forcedSource'>;

export class ApiKeyVerifier {
  readonly #cfg: ResolvedConfig;
  #ring?: Keyring;
  #at = -Infinity;
  #failedAt = -Infinity;
  #loading?: Promise<void>;
  #raw?: string;
  lastError?: unknown;
  /** Loads made (for tests and metrics). */
  loads = 0;

  private constructor(cfg: ResolvedConfig) {
    this.#cfg = cfg;
  }

  /** Loads the records once; fails if they cannot be loaded. */
  static async create(cfg: ApiKeyVerifierConfig): Promise<ApiKeyVerifier> {
    const v = new ApiKeyVerifier({ refreshMs: 5 * 60_000, missRefreshMs: 10_000, skewMs: DEFAULT_SKEW_MS, now: Date.now, ...cfg });
    await v.reload();
    return v;
  }

  /** Reloads now (concurrent callers share one load); forced: through forcedSource. */
  reload(forced = false): Promise<void> {
    this.#loading ??= (async () => {
      this.loads++;
      try {
        const raw = await (forced && this.#cfg.forcedSource ? this.#cfg.forcedSource : this.#cfg.source)();
        if (raw !== this.#raw || !this.#ring) {
          const doc = parseVerifierDoc(raw);
          const pepper = doc.records.some((r) => r.alg === 'hmac-sha256') && this.#cfg.pepper ? await this.#cfg.pepper() : undefined;
          this.#ring = new Keyring(doc, pepper, { skewMs: this.#cfg.skewMs });
          this.#raw = raw;
        }
        this.#at = this.#cfg.now();
        this.lastError = undefined;
      } catch (e) {
        this.#failedAt = this.#cfg.now();
        this.lastError = e;
        throw e;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }

  #backingOff(): boolean {
    return this.#cfg.now() - this.#failedAt < Math.max(this.#cfg.missRefreshMs, 1000);
  }

  async #current(): Promise<Keyring> {
    const age = this.#cfg.now() - this.#at;
    if (age >= 2 * this.#cfg.refreshMs && !this.#backingOff()) await this.reload().catch(() => undefined);
    else if (age >= this.#cfg.refreshMs && !this.#backingOff() && !this.#loading) this.reload().catch(() => undefined);
    if (!this.#ring) throw new ApiKeyError('no-keyring');
    return this.#ring;
  }

  async #onMiss<T>(f: (k: Keyring) => T): Promise<T> {
    const ring = await this.#current();
    try {
      return f(ring);
    } catch (e) {
      const miss = e instanceof ApiKeyError && (e.code === 'unknown-key' || e.code === 'bad-signature');
      if (!miss || this.#cfg.missRefreshMs < 0 || this.#cfg.now() - this.#at < this.#cfg.missRefreshMs || this.#backingOff()) throw e;
      await this.reload(true).catch(() => undefined);
      if (this.#ring === ring) throw e;
      return f(this.#ring!);
    }
  }

  /** Verifies a presented API key; returns its key id or throws ApiKeyError. */
  verify(key: string): Promise<string> {
    return this.#onMiss((k) => k.verify(key, new Date(this.#cfg.now())));
  }

  /** Verifies a Webhook-Signature header over body; returns the key id that verified. */
  verifySignature(header: string, body: Uint8Array | string, toleranceMs = DEFAULT_TOLERANCE_MS): Promise<string> {
    return this.#onMiss((k) => k.verifySignature(header, body, new Date(this.#cfg.now()), toleranceMs));
  }

  /** The loaded keyring (for inspection: live key ids). */
  get keyring(): Keyring | undefined {
    return this.#ring;
  }
}
