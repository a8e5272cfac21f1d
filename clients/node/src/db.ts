// PostgreSQL credentials as dbrotate keeps them (docs/dbrotate.md): the
// database secret with the reader's rules of functions/dbrotate, TLS set up
// the way dbrotate connects (verify-full by default, the secret's CA and
// server name, the system roots plus a CA bundle such as Amazon RDS's, no
// fallback to plaintext), and a pg.Pool wrapper that takes its credentials
// from AWSCURRENT and heals an authentication failure (SQLSTATE 28P01) with
// fresh reads of the secret and a bounded number of retries.

import { readFileSync } from 'node:fs';
import { checkServerIdentity, rootCertificates, type ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { DocumentError } from './errors.js';
import { isObject, parseJSON } from './json.js';
import type { SecretCache, SecretValue } from './cache.js';

export type SSLMode = 'verify-full' | 'verify-ca' | 'require' | 'disable';

/** A database secret. password is not enumerable (kept out of JSON.stringify and console.log). */
export interface DatabaseSecret {
  engine?: string;
  host: string;
  port: number;
  username: string;
  password: string;
  dbname: string;
  masterarn?: string;
  sslmode: SSLMode;
  sslservername?: string;
  sslrootcertpem?: string;
  userpair?: [string, string];
}

const MAX_IDENT = 63;
const RESERVED = new Set(['public', 'none', 'current_user', 'session_user', 'current_role', 'all']);
const bad = (msg: string) => new DocumentError('database secret: ' + msg);

export function validRoleName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= MAX_IDENT && /^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) && !RESERVED.has(name.toLowerCase()) && !name.toLowerCase().startsWith('pg_');
}

/** Parses an application database secret with the rules of pgstrategy.ParseSecret; errors never show a value. */
export function parseDatabaseSecret(text: string): DatabaseSecret {
  const o = parseJSON(text);
  if (!isObject(o)) throw bad("the value is not a JSON object (SecretString must hold the JSON of AWS's PostgreSQL templates)");
  const str = (f: string): string => {
    const v = o[f];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw bad(`field "${f}" must be a string`);
    return v.trim();
  };
  const engine = str('engine');
  if (engine && !['postgres', 'postgresql', 'aurora-postgresql'].includes(engine.toLowerCase())) throw bad('engine is not PostgreSQL ("postgres")');
  const host = str('host');
  if (/[ \t\r\n/,=]/.test(host)) throw bad('host is not a host name or address');
  const username = str('username');
  const password = str('password');
  const dbname = str('dbname');
  if (dbname.includes('\0') || Buffer.byteLength(dbname) > MAX_IDENT) throw bad('dbname is not a valid database name');
  let port = 5432;
  const rp = o.port;
  if (rp !== undefined && rp !== null) {
    const t = typeof rp === 'number' ? String(rp) : typeof rp === 'string' ? rp.trim() : undefined;
    if (t === undefined) throw bad('field "port" must be a number or a string holding one');
    if (!/^[+-]?\d+$/.test(t) || Number(t) < 1 || Number(t) > 65535) throw bad('port is not a TCP port (1-65535)');
    port = Number(t);
  }
  for (const [f, v] of [['host', host], ['username', username], ['password', password]]) {
    if (!v) throw bad(`no "${f}" field; a PostgreSQL secret needs host, username and password (port, dbname, engine optional)`);
  }
  if (!validRoleName(username)) throw bad('username is not a role name this suite manages');
  const mode = (str('sslmode') || 'verify-full').toLowerCase();
  if (!['verify-full', 'verify-ca', 'require', 'disable'].includes(mode)) throw bad('sslmode must be verify-full (default), verify-ca, require or disable; there is no fallback mode');
  const s: DatabaseSecret = { host, port, username, dbname: dbname || 'postgres', sslmode: mode as SSLMode } as DatabaseSecret;
  Object.defineProperty(s, 'password', { value: password, enumerable: false });
  if (engine) s.engine = engine;
  if (str('sslservername')) s.sslservername = str('sslservername');
  if (str('sslrootcertpem')) s.sslrootcertpem = str('sslrootcertpem');
  if (str('masterarn')) s.masterarn = str('masterarn');
  if (o.userpair !== undefined && o.userpair !== null) {
    const p = o.userpair;
    if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => typeof x === 'string')) throw bad('"userpair" must be an array of exactly two role names');
    if (!p.every(validRoleName)) throw bad('a "userpair" entry is not a valid role name');
    if (p[0] === p[1]) throw bad('the two "userpair" roles must differ');
    if (username !== p[0] && username !== p[1]) throw bad('username is not one of the "userpair" roles');
    s.userpair = [p[0], p[1]];
  }
  return s;
}

export interface TLSOptions {
  /** PEM CA bundle trusted besides the system roots, e.g. Amazon RDS's global bundle (DB_CA_BUNDLE_FILE in dbrotate). */
  caBundlePem?: string;
  /** Path of such a bundle; default: the DB_CA_BUNDLE_FILE environment variable, as dbrotate reads it. */
  caBundleFile?: string;
  /** Allow sslmode=disable (plaintext); refused otherwise, as dbrotate refuses it without ALLOW_PLAINTEXT_DB_CONNECTIONS. */
  allowPlaintext?: boolean;
}

/** The pg `ssl` option for a secret, as dbrotate connects: never a fallback from TLS to plaintext. */
export function tlsFor(s: DatabaseSecret, opts: TLSOptions = {}): false | ConnectionOptions {
  if (s.sslmode === 'disable') {
    if (!opts.allowPlaintext) throw new Error(`the secret asks for sslmode=disable (no TLS) for ${s.host}:${s.port}/${s.dbname}; pass allowPlaintext to permit it`);
    return false;
  }
  const ca = [...rootCertificates];
  if (opts.caBundlePem) ca.push(opts.caBundlePem);
  const bundle = opts.caBundleFile ?? process.env.DB_CA_BUNDLE_FILE;
  if (bundle) ca.push(readFileSync(bundle, 'utf8'));
  if (s.sslrootcertpem) {
    if (!s.sslrootcertpem.includes('-----BEGIN CERTIFICATE-----')) throw bad("sslrootcertpem holds no PEM certificate");
    ca.push(s.sslrootcertpem);
  }
  const base: ConnectionOptions = { ca, minVersion: 'TLSv1.2' };
  switch (s.sslmode) {
    case 'verify-full': {
      const name = s.sslservername || s.host;
      return { ...base, rejectUnauthorized: true, servername: /^[\d.]+$|:/.test(name) ? undefined : name, checkServerIdentity: (_h, cert) => checkServerIdentity(name, cert) };
    }
    case 'verify-ca':
      // Verify the chain but not the name, as libpq's verify-ca does.
      return { ...base, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    default:
      return { ...base, rejectUnauthorized: false };
  }
}

/** SQLSTATE 28P01 (invalid_password) or 28000 (invalid_authorization_specification). */
export function isAuthFailure(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '28P01' || code === '28000';
}

export interface RotatingPoolConfig {
  cache: SecretCache;
  /** The database secret (ARN or name). */
  secretId: string;
  /** pg.Pool options besides the connection target and credentials (max, idleTimeoutMillis, …). */
  pool?: Omit<pg.PoolConfig, 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl' | 'connectionString'>;
  tls?: TLSOptions;
  /** Called for every rebuild of the underlying pool and every healed failure (no secrets in it). */
  onEvent?: (e: { type: 'pool' | 'healed' | 'heal-failed'; user: string; versionId: string }) => void;
}

interface Generation {
  versionId: string;
  user: string;
  pool: pg.Pool;
}

/** How many times one call retries after a refused login before it gives up. */
const maxHealRetries = 4;

/**
 * A pg.Pool that follows the secret's AWSCURRENT. A new AWSCURRENT version (seen through the cache's
 * refresh or an invalidation) gets a new pool; the old one finishes its queries and is closed. A query that
 * fails to authenticate (28P01) gets a value of the secret read after the attempt began (cache.refreshSince,
 * one read per minRefreshInterval however many connections were refused) — and, while a single-user rotation
 * is between setSecret and finishSecret, a look at AWSPENDING, whose password the role already has — and is
 * retried with it; a retry that is refused too reads again, up to maxHealRetries times, with versions not yet
 * refused in that call. A call that overlaps at most one rotation therefore never fails for a refused password.
 */
export class RotatingPool {
  readonly #cfg: RotatingPoolConfig;
  #gen?: Generation;
  #pendingGen?: Generation;
  readonly #old = new Set<pg.Pool>();
  #closed = false;
  /** Healed authentication failures (for tests and metrics). */
  healed = 0;

  constructor(cfg: RotatingPoolConfig) {
    this.#cfg = cfg;
  }

  #make(v: SecretValue): Generation {
    const s = parseDatabaseSecret(v.value);
    const pool = new pg.Pool({
      idleTimeoutMillis: 30_000,
      ...this.#cfg.pool,
      host: s.host,
      port: s.port,
      database: s.dbname,
      user: s.username,
      password: s.password,
      ssl: tlsFor(s, this.#cfg.tls),
    });
    pool.on('error', () => undefined); // an idle client's error is handled by the next query
    this.#cfg.onEvent?.({ type: 'pool', user: s.username, versionId: v.versionId });
    return { versionId: v.versionId, user: s.username, pool };
  }

  #retire(g: Generation | undefined) {
    if (!g) return;
    this.#old.add(g.pool);
    g.pool.end().catch(() => undefined).finally(() => this.#old.delete(g.pool));
  }

  async #current(): Promise<Generation> {
    if (this.#closed) throw new Error('the pool is closed');
    const v = await this.#cfg.cache.get(this.#cfg.secretId);
    if (!this.#gen || this.#gen.versionId !== v.versionId) {
      const old = this.#gen;
      this.#gen = this.#make(v);
      this.#retire(old);
      if (this.#pendingGen) {
        this.#retire(this.#pendingGen);
        this.#pendingGen = undefined;
      }
    }
    return this.#pendingGen ?? this.#gen;
  }

  /** Runs a query (pg's query arguments), healing authentication failures (see #withHeal). */
  async query<R extends pg.QueryResultRow = any>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.#withHeal((g) => g.pool.query<R>(text as string, values));
  }

  /** Checks out a client (pg's pool.connect), healing authentication failures at connect time. */
  async connect(): Promise<pg.PoolClient> {
    return this.#withHeal((g) => g.pool.connect());
  }

  /**
   * Runs op on the current credentials. After a refusal (28P01) it retries, at most maxHealRetries times, with
   * a version of the secret read after that attempt began and not yet refused in this call: AWSCURRENT, else
   * AWSPENDING (a single-user rotation between setSecret and finishSecret), else AWSCURRENT once more (a
   * finishSecret that promoted AWSPENDING between the two reads). It stops as soon as no stage offers a
   * version it has not been refused with, so a password that is wrong everywhere costs a bounded number of
   * reads, shared with every other refused call through the cache's rate limit.
   */
  async #withHeal<T>(op: (g: Generation) => Promise<T>): Promise<T> {
    let g = await this.#current();
    const refused = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      const at = this.#cfg.cache.clock();
      try {
        const r = await op(g);
        if (attempt > 0) {
          this.healed++;
          this.#cfg.onEvent?.({ type: 'healed', user: g.user, versionId: g.versionId });
        }
        return r;
      } catch (e) {
        if (!isAuthFailure(e)) throw e;
        refused.add(g.versionId);
        const h = attempt < maxHealRetries ? await this.#heal(refused, at) : undefined;
        if (!h) {
          if (attempt > 0) this.#cfg.onEvent?.({ type: 'heal-failed', user: g.user, versionId: g.versionId });
          throw e;
        }
        g = h;
      }
    }
  }

  async #heal(refused: Set<string>, since: number): Promise<Generation | undefined> {
    const id = this.#cfg.secretId;
    // A value read after the refused attempt began (the refusal may come from a change an earlier read
    // predates); the cache makes at most one read per minRefreshInterval however many connections were refused.
    const cur = await this.#cfg.cache.refreshSince(id, 'AWSCURRENT', since);
    if (!refused.has(cur.versionId)) return this.#adoptCurrent(cur);
    // AWSCURRENT did not change: a single-user rotation may have set the new password (setSecret) but not
    // yet promoted it (finishSecret). The role then has AWSPENDING's password.
    try {
      const pending = await this.#cfg.cache.refreshSince(id, 'AWSPENDING', since);
      if (!refused.has(pending.versionId)) {
        if (!this.#pendingGen || this.#pendingGen.versionId !== pending.versionId) {
          this.#retire(this.#pendingGen);
          this.#pendingGen = this.#make(pending);
        }
        return this.#pendingGen;
      }
    } catch {
      // no AWSPENDING (finishSecret may just have removed it)
    }
    const again = await this.#cfg.cache.refreshSince(id, 'AWSCURRENT', this.#cfg.cache.clock());
    return refused.has(again.versionId) ? undefined : this.#adoptCurrent(again);
  }

  #adoptCurrent(v: SecretValue): Generation {
    if (!this.#gen || this.#gen.versionId !== v.versionId) {
      this.#retire(this.#gen);
      this.#gen = this.#make(v);
      this.#retire(this.#pendingGen);
      this.#pendingGen = undefined;
    }
    return this.#gen;
  }

  /** The user the pool logs in as now. */
  get user(): string | undefined {
    return (this.#pendingGen ?? this.#gen)?.user;
  }

  async end(): Promise<void> {
    this.#closed = true;
    const pools = [this.#gen?.pool, this.#pendingGen?.pool, ...this.#old].filter((p): p is pg.Pool => !!p);
    this.#gen = this.#pendingGen = undefined;
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}
