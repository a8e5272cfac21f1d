// JWKs and JWK Sets as pkg/jwks reads them: the algorithms the suite
// signs with, and the parsing of public keys (no private members, a key that
// fits its alg, kid = RFC 7638 thumbprint) and of whole sets.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { DocumentError } from '../errors.js';
import { isObject } from '../json.js';

export const ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** A DocumentError for a JWT key document, JWK or JWK Set that does not meet its schema. */
export const malformed = (msg: string) => new DocumentError('malformed: ' + msg);

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
