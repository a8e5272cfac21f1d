// A cache of Secrets Manager values with the behaviour of the suite's Go
// consumer cache: versioned values (version id and stages kept with each),
// refresh in the background once a value is older than its TTL (the stale
// value keeps serving meanwhile, and after a failed refresh, up to maxStale),
// one request per secret and stage however many callers miss at once, a
// forced refresh after an authentication failure that is rate-limited per
// secret, and invalidation from the suite's notifications (SNS → SQS) and
// from EventBridge RotationSucceeded events.

import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** One version of a secret. value is not enumerable: it stays out of JSON.stringify and console.log. */
export interface SecretValue {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  readonly stages: readonly string[];
  readonly value: string;
  readonly fetchedAt: number;
}

export interface SecretCacheConfig {
  client: SecretsManagerClient;
  /** A value older than this is refreshed in the background on its next use (default 5 minutes). */
  ttlMs?: number;
  /** How long past ttlMs a value may still serve while refreshes fail (default ttlMs). After that get() fails. */
  maxStaleMs?: number;
  /** The floor between forced refreshes of one secret and stage (default 10 s). */
  minForcedRefreshMs?: number;
  now?: () => number;
}

interface Entry {
  id: string;
  stage: string;
  value?: SecretValue;
  loading?: Promise<SecretValue>;
  lastTry: number;
  lastForced: number;
  invalidated: boolean;
  lastError?: unknown;
}

/** The rotation events that make cached values of a secret outdated. */
export const INVALIDATING_EVENTS = ['rotation.started', 'rotation.succeeded', 'RotationSucceeded'];

export class SecretCache {
  readonly #sm: SecretsManagerClient;
  readonly #ttl: number;
  readonly #maxStale: number;
  readonly #minForced: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new Set<(secretArn: string) => void>();
  /** GetSecretValue calls made (for tests and metrics). */
  fetches = 0;

  constructor(cfg: SecretCacheConfig) {
    this.#sm = cfg.client;
    this.#ttl = cfg.ttlMs && cfg.ttlMs > 0 ? cfg.ttlMs : 5 * 60_000;
    this.#maxStale = cfg.maxStaleMs && cfg.maxStaleMs > 0 ? cfg.maxStaleMs : this.#ttl;
    this.#minForced = cfg.minForcedRefreshMs && cfg.minForcedRefreshMs > 0 ? cfg.minForcedRefreshMs : 10_000;
    this.#now = cfg.now ?? Date.now;
  }

  #entry(id: string, stage: string): Entry {
    const k = stage + '\0' + id;
    let e = this.#entries.get(k);
    if (!e) {
      e = { id, stage, lastTry: -Infinity, lastForced: -Infinity, invalidated: false };
      this.#entries.set(k, e);
    }
    return e;
  }

  #load(e: Entry): Promise<SecretValue> {
    e.loading ??= (async () => {
      e.lastTry = this.#now();
      this.fetches++;
      try {
        const out = await this.#sm.send(new GetSecretValueCommand({ SecretId: e.id, VersionStage: e.stage }));
        const v = { arn: out.ARN ?? '', name: out.Name ?? '', versionId: out.VersionId ?? '', stages: out.VersionStages ?? [], fetchedAt: this.#now() } as unknown as SecretValue;
        Object.defineProperty(v, 'value', { value: out.SecretString ?? '', enumerable: false });
        Object.freeze(v);
        e.value = v;
        e.invalidated = false;
        e.lastError = undefined;
        return v;
      } catch (err) {
        e.lastError = err;
        throw err;
      } finally {
        e.loading = undefined;
      }
    })();
    return e.loading;
  }

  /**
   * Returns the value of secretId at stage (default AWSCURRENT). A fresh value is returned at once; an old
   * one is returned at once too while a background refresh runs, until it is ttl + maxStale old; an
   * invalidated or missing one is loaded first. Concurrent misses share one request.
   */
  async get(secretId: string, stage = 'AWSCURRENT'): Promise<SecretValue> {
    const e = this.#entry(secretId, stage);
    const v = e.value;
    if (!v || e.invalidated) return this.#load(e);
    const age = this.#now() - v.fetchedAt;
    if (age < this.#ttl) return v;
    if (age < this.#ttl + this.#maxStale) {
      if (!e.loading && this.#now() - e.lastTry >= Math.min(this.#minForced, this.#ttl)) this.#load(e).catch(() => undefined);
      return v;
    }
    return this.#load(e);
  }

  /**
   * Reloads secretId now because its value was refused (an authentication failure). At most one forced
   * reload per minForcedRefreshMs per secret and stage; inside the floor it returns what is cached (or the
   * reload already running). Returns the value and whether it changed version.
   */
  async forceRefresh(secretId: string, stage = 'AWSCURRENT'): Promise<{ value: SecretValue; changed: boolean }> {
    const e = this.#entry(secretId, stage);
    const before = e.value?.versionId;
    if (e.loading) {
      const value = await e.loading;
      return { value, changed: value.versionId !== before };
    }
    if (e.value && this.#now() - e.lastForced < this.#minForced) return { value: e.value, changed: false };
    e.lastForced = this.#now();
    const value = await this.#load(e);
    return { value, changed: value.versionId !== before };
  }

  /** Marks every cached stage of a secret (by ARN, name or the id it was requested by) as outdated. */
  invalidate(secret: string): number {
    let n = 0;
    for (const e of this.#entries.values()) {
      if (e.id === secret || e.value?.arn === secret || e.value?.name === secret || sameSecretArn(e.id, secret)) {
        e.invalidated = true;
        n++;
      }
    }
    for (const l of this.#listeners) l(secret);
    return n;
  }

  /** Calls f with the secret's ARN whenever a notification invalidates it. */
  onInvalidate(f: (secretArn: string) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  /**
   * Handles one message body: a suite notification (raw, or inside an SNS envelope as SQS delivers it) or an
   * EventBridge event for Secrets Manager's RotationSucceeded. Returns the secret ARN it invalidated, if any.
   */
  handleMessage(body: string): string | undefined {
    const arn = rotatedSecret(body);
    if (arn) this.invalidate(arn);
    return arn;
  }

  /**
   * Long-polls an SQS queue subscribed to the suite's SNS topic (or an EventBridge rule's target) and
   * invalidates what its messages name; every message is deleted once handled. Returns a stop function.
   */
  subscribe(sqs: SQSClient, queueUrl: string, opts: { waitTimeSeconds?: number; onError?: (e: unknown) => void } = {}): () => Promise<void> {
    const ac = new AbortController();
    const loop = (async () => {
      while (!ac.signal.aborted) {
        try {
          const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: opts.waitTimeSeconds ?? 20 }), { abortSignal: ac.signal });
          const done = [];
          for (const m of out.Messages ?? []) {
            this.handleMessage(m.Body ?? '');
            done.push({ Id: String(done.length), ReceiptHandle: m.ReceiptHandle });
          }
          if (done.length) await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done }));
        } catch (e) {
          if (ac.signal.aborted) break;
          opts.onError?.(e);
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    return async () => {
      ac.abort();
      await loop;
    };
  }

  /** The last refresh error of a secret and stage, if its last refresh failed. */
  lastError(secretId: string, stage = 'AWSCURRENT'): unknown {
    return this.#entries.get(stage + '\0' + secretId)?.lastError;
  }
}

// A secret's ARN ends in "-" and six random characters; a notification always carries the full ARN.
function sameSecretArn(id: string, arn: string): boolean {
  return id.startsWith('arn:') && arn.startsWith(id + '-') && arn.length === id.length + 7;
}

/** The secret a notification or event says was (or is being) rotated, if it is one of the invalidating kinds. */
export function rotatedSecret(body: string): string | undefined {
  let o: any;
  try {
    o = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (o && o.Type === 'Notification' && typeof o.Message === 'string') {
    try {
      o = JSON.parse(o.Message);
    } catch {
      return undefined;
    }
  }
  if (!o || typeof o !== 'object') return undefined;
  // The suite's own notification (pkg/rotation.Notification).
  if (typeof o.event === 'string' && typeof o.secretArn === 'string' && o.schemaVersion >= 1) {
    return INVALIDATING_EVENTS.includes(o.event) && o.outcome !== 'failure' ? o.secretArn : undefined;
  }
  // EventBridge: Secrets Manager's RotationSucceeded, delivered through CloudTrail.
  if (o.source === 'aws.secretsmanager' && o.detail && o.detail.eventName === 'RotationSucceeded') {
    const d = o.detail;
    const id = d.additionalEventData?.SecretId ?? d.serviceEventDetails?.SecretId ?? d.requestParameters?.secretId;
    if (typeof id === 'string' && id) return id;
    const r = Array.isArray(o.resources) ? o.resources.find((x: unknown) => typeof x === 'string') : undefined;
    return r;
  }
  return undefined;
}
