// A rotation-aware cache of Secrets Manager values, with the behaviour of
// the suite's Go cache (pkg/secretcache):
//
//   - values are cached by version: a stage maps to the version that carried
//     it when last read, and a version's value never changes (getVersion
//     never reads a version twice);
//   - a request never waits for a refresh once a value is loaded: a value
//     older than ttl is served while one background read replaces it; only a
//     value older than maxStale (the reads kept failing) is not served — the
//     request then waits for a read and fails closed if it fails;
//   - one read per secret and stage is in flight at a time (single flight);
//   - refresh(id) is for "the credential was just refused": it reads now, at
//     most once per minRefreshInterval per secret;
//   - invalidate(idOrArn) re-reads at once (a read in flight is followed by
//     one more), driven by the suite's SNS notifications or Secrets
//     Manager's EventBridge events through one SQS queue (subscribeQueue);
//   - subscribe(fn) tells a consumer that a stage moved to a new version.

import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { parseJSON } from './json.js';

/** One version of a secret. value is not enumerable: it stays out of JSON.stringify and console.log. */
export interface SecretValue {
  readonly arn: string;
  readonly name: string;
  readonly versionId: string;
  /** The version's stages when it was read. */
  readonly stages: readonly string[];
  readonly value: string;
  readonly fetchedAt: number;
}

/** A stage that moved to a new version, as a read found it. */
export interface Change {
  secretId: string;
  arn: string;
  stage: string;
  oldVersionId?: string;
  newVersionId: string;
}

export const DEFAULT_TTL_MS = 5 * 60_000;
export const DEFAULT_MIN_REFRESH_INTERVAL_MS = 1000;
export const DEFAULT_READ_TIMEOUT_MS = 5000;
const RETRY_MIN_MS = 1000;

export interface SecretCacheConfig {
  client: SecretsManagerClient;
  /** Age after which a value is re-read in the background on its next use (default 5 minutes). */
  ttlMs?: number;
  /** Age after which a value is no longer served (default 3 × ttl; at least ttl). */
  maxStaleMs?: number;
  /** The least time between two reads forced by refresh() for one secret (default 1 s). */
  minRefreshIntervalMs?: number;
  /** Bounds one read, whoever waits for it (default 5 s). */
  readTimeoutMs?: number;
  now?: () => number;
}

/** A value the cache could not provide (the read failed and nothing servable is cached). Never holds a value. */
export class SecretUnavailableError extends Error {
  override name = 'SecretUnavailableError';
  constructor(readonly secretId: string, readonly stage: string, cause: unknown) {
    super(`secretcache: secret value unavailable: ${secretId} (${stage}): ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

interface Entry {
  id: string;
  stage: string; // '' for a version entry
  version: string;
  cur?: SecretValue;
  curStarted: number; // when the read that produced cur started
  flight?: Promise<SecretValue>;
  flightStarted: number;
  lastRead: number; // when the last read started
  again: boolean;
  lastForced: number;
  failures: number;
  retryAt: number;
  lastError?: unknown;
}

export class SecretCache {
  readonly #sm: SecretsManagerClient;
  readonly #ttl: number;
  readonly #maxStale: number;
  readonly #minRefresh: number;
  readonly #readTimeout: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #subs = new Set<(c: Change) => void>();
  /** GetSecretValue calls made (for tests and metrics). */
  reads = 0;

  constructor(cfg: SecretCacheConfig) {
    this.#sm = cfg.client;
    this.#ttl = cfg.ttlMs && cfg.ttlMs > 0 ? cfg.ttlMs : DEFAULT_TTL_MS;
    this.#maxStale = Math.max(cfg.maxStaleMs && cfg.maxStaleMs > 0 ? cfg.maxStaleMs : 3 * this.#ttl, this.#ttl);
    this.#minRefresh = cfg.minRefreshIntervalMs && cfg.minRefreshIntervalMs > 0 ? cfg.minRefreshIntervalMs : DEFAULT_MIN_REFRESH_INTERVAL_MS;
    this.#readTimeout = cfg.readTimeoutMs && cfg.readTimeoutMs > 0 ? cfg.readTimeoutMs : DEFAULT_READ_TIMEOUT_MS;
    this.#now = cfg.now ?? Date.now;
  }

  #entry(id: string, stage: string, version = ''): Entry {
    const k = `${version ? 'v' : 's'}\0${version || stage}\0${id}`;
    let e = this.#entries.get(k);
    if (!e) {
      e = { id, stage: version ? '' : stage, version, curStarted: -Infinity, flightStarted: -Infinity, lastRead: -Infinity, again: false, lastForced: -Infinity, failures: 0, retryAt: -Infinity };
      this.#entries.set(k, e);
    }
    return e;
  }

  #start(e: Entry): Promise<SecretValue> {
    const started = this.#now();
    e.lastRead = e.flightStarted = started;
    const p = (async () => {
      this.reads++;
      let v: SecretValue | undefined;
      let error: unknown;
      try {
        const out = await this.#sm.send(
          new GetSecretValueCommand(e.version ? { SecretId: e.id, VersionId: e.version } : { SecretId: e.id, VersionStage: e.stage }),
          { abortSignal: AbortSignal.timeout(this.#readTimeout) },
        );
        const text = out.SecretString ?? Buffer.from(out.SecretBinary ?? new Uint8Array()).toString('utf8');
        v = { arn: out.ARN ?? '', name: out.Name ?? '', versionId: out.VersionId ?? '', stages: Object.freeze([...(out.VersionStages ?? [])]), fetchedAt: this.#now() } as unknown as SecretValue;
        Object.defineProperty(v, 'value', { value: text, enumerable: false });
        Object.freeze(v);
      } catch (err) {
        error = err;
      }
      let change: Change | undefined;
      if (v) {
        const old = e.cur;
        e.cur = v;
        e.curStarted = started;
        e.failures = 0;
        e.retryAt = -Infinity;
        e.lastError = undefined;
        if (!e.version && (!old || old.versionId !== v.versionId)) {
          change = { secretId: e.id, arn: v.arn, stage: e.stage, oldVersionId: old?.versionId, newVersionId: v.versionId };
          const ve = this.#entry(e.id, '', v.versionId);
          ve.cur ??= v;
        }
      } else {
        e.failures++;
        e.lastError = error;
        e.retryAt = this.#now() + Math.min(RETRY_MIN_MS * 2 ** Math.min(e.failures - 1, 20), this.#ttl);
      }
      e.flight = undefined;
      if (e.again) {
        e.again = false;
        e.flight = this.#start(e);
        e.flight.catch(() => undefined);
      }
      if (change) for (const fn of this.#subs) fn(change);
      if (!v) throw new SecretUnavailableError(e.id, e.version || e.stage, error);
      return v;
    })();
    e.flight = p;
    p.catch(() => undefined); // a background read's failure is recorded on the entry
    return p;
  }

  async #get(e: Entry): Promise<SecretValue> {
    const now = this.#now();
    const s = e.cur;
    if (s) {
      if (e.version) return s;
      const age = now - s.fetchedAt;
      if (age < this.#ttl) return s;
      if (age < this.#maxStale) {
        if (!e.flight && now >= e.retryAt) this.#start(e);
        return s;
      }
    }
    if (e.flight) return e.flight;
    if (now < e.retryAt) throw new SecretUnavailableError(e.id, e.version || e.stage, new Error(`the last read failed; next try in ${e.retryAt - now} ms: ${(e.lastError as Error)?.message ?? e.lastError}`));
    return this.#start(e);
  }

  /** The cache's clock (milliseconds), for refreshSince. */
  clock(): number {
    return this.#now();
  }

  /** The value of secretId at stage (default AWSCURRENT); see the module comment for when it reads. */
  get(secretId: string, stage = 'AWSCURRENT'): Promise<SecretValue> {
    return this.#get(this.#entry(secretId, stage));
  }

  /** One version of a secret, read once and kept (a version's value never changes). */
  getVersion(secretId: string, versionId: string): Promise<SecretValue> {
    return this.#get(this.#entry(secretId, '', versionId));
  }

  /**
   * Reads secretId at stage now, because its value was just refused. At most one forced read per
   * minRefreshInterval per secret and stage: inside the interval it joins the read in flight or returns the
   * cached value. Compare the result's versionId with the refused one to know whether retrying can help.
   */
  async refresh(secretId: string, stage = 'AWSCURRENT'): Promise<SecretValue> {
    const e = this.#entry(secretId, stage);
    const now = this.#now();
    if (e.flight) return e.flight;
    if (now - e.lastForced < this.#minRefresh) {
      if (e.cur && now - e.cur.fetchedAt < this.#maxStale) return e.cur;
      throw new SecretUnavailableError(secretId, stage, e.lastError ?? new Error('refresh rate limit reached'));
    }
    e.lastForced = now;
    return this.#start(e);
  }

  /**
   * Returns the value of stage from a read that started at or after since — for "this credential was refused
   * at since", where a value read earlier may predate the change that caused the refusal. It joins such a read
   * in flight or returns its result; otherwise it starts one, keeping to one read per minRefreshInterval per
   * stage, so it may wait up to that long for its turn.
   */
  async refreshSince(secretId: string, stage: string, since: number): Promise<SecretValue> {
    const e = this.#entry(secretId, stage);
    for (;;) {
      if (e.flight && e.flightStarted >= since) return e.flight;
      if (!e.flight && e.cur && e.curStarted >= since) return e.cur;
      if (e.flight) {
        await e.flight.catch(() => undefined);
        continue;
      }
      const left = this.#minRefresh - (this.#now() - e.lastRead);
      if (left <= 0) return this.#start(e);
      await new Promise((r) => setTimeout(r, left));
    }
  }

  /**
   * Re-reads at once every cached stage of the secret named secretIdOrArn (the name or ARN it was asked by,
   * or the ARN or name Secrets Manager returned), serving the values in use until the reads return. A read
   * already in flight is followed by one more, so a notification is never lost. It does not wait.
   */
  invalidate(secretIdOrArn: string): void {
    for (const e of this.#entries.values()) {
      if (e.version) continue;
      const match = e.id === secretIdOrArn || e.cur?.arn === secretIdOrArn || e.cur?.name === secretIdOrArn;
      if (!match) continue;
      if (e.flight) e.again = true;
      else this.#start(e);
    }
  }

  /** Calls fn after every read that found a stage on a new version. Returns the unsubscribe function. */
  subscribe(fn: (c: Change) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** The last read error of a secret and stage, if its last read failed. */
  lastError(secretId: string, stage = 'AWSCURRENT'): unknown {
    return this.#entries.get(`s\0${stage}\0${secretId}`)?.lastError;
  }

  /**
   * Handles one SQS message body: the suite's notification (raw, or in its SNS envelope) or an EventBridge
   * event from Secrets Manager. Invalidates and returns the secret it names, if it is a rotation that ended.
   */
  handleMessage(body: string): string | undefined {
    const id = rotatedSecret(body);
    if (id) this.invalidate(id);
    return id;
  }

  /**
   * Long-polls an SQS queue subscribed to the suite's SNS topic (or targeted by an EventBridge rule) and
   * invalidates what its messages name; every message is deleted once handled. Returns a stop function.
   */
  subscribeQueue(sqs: SQSClient, queueUrl: string, opts: { waitTimeSeconds?: number; onError?: (e: unknown) => void; onMessage?: (secret: string | undefined) => void } = {}): () => Promise<void> {
    const ac = new AbortController();
    const loop = (async () => {
      while (!ac.signal.aborted) {
        try {
          const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: opts.waitTimeSeconds ?? 20 }), { abortSignal: ac.signal });
          const done = (out.Messages ?? []).map((m, i) => {
            opts.onMessage?.(this.handleMessage(m.Body ?? ''));
            return { Id: String(i), ReceiptHandle: m.ReceiptHandle };
          });
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
}

/**
 * The secret a message says finished rotating: the suite's "rotation.succeeded" notification (raw or inside
 * an SNS envelope), or Secrets Manager's EventBridge events RotationSucceeded (detail.additionalEventData.SecretId)
 * and UpdateSecretVersionStage (detail.requestParameters.secretId). Anything else: undefined.
 */
export function rotatedSecret(body: string): string | undefined {
  const parse = (s: string): any => parseJSON(s);
  let o = parse(body);
  if (o && o.Type === 'Notification' && typeof o.Message === 'string') o = parse(o.Message);
  if (!o || typeof o !== 'object') return undefined;
  if (o.event === 'rotation.succeeded' && typeof o.secretArn === 'string' && o.secretArn) return o.secretArn;
  if (o.source === 'aws.secretsmanager' && o.detail) {
    const d = o.detail;
    if (d.eventName === 'RotationSucceeded' && typeof d.additionalEventData?.SecretId === 'string' && d.additionalEventData.SecretId) return d.additionalEventData.SecretId;
    if (d.eventName === 'UpdateSecretVersionStage' && typeof d.requestParameters?.secretId === 'string' && d.requestParameters.secretId) return d.requestParameters.secretId;
  }
  return undefined;
}
