// The JWT signing-key secret (docs/jwt.md, schema version 1): its types,
// its parsing and validation with the rules of pkg/jwks.ParseDocument /
// Validate, and the JWK Set inside a source that holds either a bare set or
// a whole signing-key document.

import type { JWK } from 'jose';
import { isObject, parseJSON, fields, optInt, optString, optTime, type Obj } from '../json.js';
import { checkAlgorithm, malformed, parseJwkSet, parsePublicJWK, type Algorithm, type PublicKey } from './jwk.js';

export const JWT_SCHEMA_VERSION = 1;

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

/** Returns the JWK Set inside raw, which is a bare set or a whole signing-key document. */
export async function extractJwkSet(raw: string): Promise<Map<string, PublicKey>> {
  const o = parseJSON(raw);
  if (!isObject(o)) throw malformed('the JWK Set source is not a JSON object');
  if ('keys' in o) return parseJwkSet(o);
  const doc = await parseJwtKeyring(raw);
  if (!doc.jwks) throw malformed('the signing-key secret has no JWK Set yet (it was never rotated)');
  return parseJwkSet(doc.jwks);
}
