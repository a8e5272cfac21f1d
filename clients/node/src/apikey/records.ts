// The documents of an API-key or webhook secret (docs/apikey.md, schema
// version 1): the caller secret a client holds and the verifier document a
// receiving service holds, with its records, read strictly; a record's key
// (webhook) is kept out of JSON and logs.

import { DocumentError } from '../errors.js';
import { isObject, parseJSON, fields, optString, optInt, optTime, zeroTime, type Obj } from '../json.js';
import { isBase62, parseKey, validPrefix, KEY_ID_LEN, type HashAlg, type Kind, type ParsedKey, type Status } from './format.js';

export const SCHEMA_VERSION = 1;
export const MAX_DOC_BYTES = 64 << 10;
export const MAX_RECORDS = 256;

const docErr = (msg: string) => new DocumentError('apikey: malformed document: ' + msg);

function readDoc(text: string, what: string): Obj {
  if (Buffer.byteLength(text, 'utf8') > MAX_DOC_BYTES) throw docErr(`${what} is more than ${MAX_DOC_BYTES} bytes`);
  const v = parseJSON(text);
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
