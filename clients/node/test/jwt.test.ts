import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { SignJWT, UnsecuredJWT, calculateJwkThumbprint, type JWK } from 'jose';
import { JwtVerifier, parseJwkSet, parseJwtKeyring, parsePublicJWK, type Algorithm } from '../src/jwt.js';
import { DocumentError } from '../src/errors.js';
import { katDir, readJSON, writeOut } from './paths.js';

interface Vector { alg: Algorithm; jwk: JWK; thumbprint: string; token: string }
const vectors = readJSON<Vector[]>(join(katDir, 'kat-jwk.json'));

const staticSource = (v: unknown) => async () => JSON.stringify(v);

test('JWK thumbprints are the Go answers, and Go-signed tokens verify with the algorithm pinned', async () => {
  assert.deepEqual(vectors.map((v) => v.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
  for (const v of vectors) {
    assert.equal((await parsePublicJWK(v.jwk)).kid, v.thumbprint);
    assert.equal(await calculateJwkThumbprint(v.jwk, 'sha256'), v.thumbprint);
    const ver = await JwtVerifier.create({ source: staticSource({ keys: [v.jwk] }), algorithms: [v.alg] });
    const { payload } = await ver.verify(v.token, { issuer: 'rotation-suite' });
    assert.equal(payload.sub, 'go-kat');
    const other = vectors.find((o) => o.alg !== v.alg)!;
    const pinned = await JwtVerifier.create({ source: staticSource({ keys: [v.jwk] }), algorithms: [other.alg] });
    await assert.rejects(pinned.verify(v.token), /not accepted/, 'an algorithm outside the pinned list');
  }
});

function keyPair(alg: Algorithm) {
  const kp = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  return kp;
}

async function publicJwk(alg: Algorithm, kp: ReturnType<typeof keyPair>): Promise<JWK> {
  const jwk = createPublicKey(kp.privateKey).export({ format: 'jwk' }) as JWK;
  return { ...jwk, kid: await calculateJwkThumbprint(jwk, 'sha256'), alg, use: 'sig' };
}

test('tokens signed here are written for Go to verify', async () => {
  const out = [];
  for (const alg of ['ES256', 'RS256', 'EdDSA'] as Algorithm[]) {
    const kp = keyPair(alg);
    const jwk = await publicJwk(alg, kp);
    const token = await new SignJWT({ sub: 'node-kat' }).setProtectedHeader({ alg, kid: jwk.kid!, typ: 'JWT' }).setExpirationTime('1h').setIssuer('rotation-suite').sign(kp.privateKey);
    out.push({ alg, jwk, thumbprint: jwk.kid, token });
  }
  writeOut('jwt-offline.json', out);
});

test('the verifier refuses none, HS256 over the public key, an alg that differs from its key, no kid and no exp', async () => {
  const kp = keyPair('ES256');
  const jwk = await publicJwk('ES256', kp);
  const v = await JwtVerifier.create({ source: staticSource({ keys: [jwk] }), algorithms: ['ES256', 'EdDSA'] });
  const none = new UnsecuredJWT({ sub: 'x' }).setExpirationTime('1h').encode();
  await assert.rejects(v.verify(none), /not accepted/);
  const hs = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', kid: jwk.kid! }).setExpirationTime('1h').sign(Buffer.from(JSON.stringify(jwk)));
  await assert.rejects(v.verify(hs), /not accepted/);
  const ed = keyPair('EdDSA');
  const edTok = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid! }).setExpirationTime('1h').sign(ed.privateKey);
  await assert.rejects(v.verify(edTok), /differs from key/);
  const noKid = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setExpirationTime('1h').sign(kp.privateKey);
  await assert.rejects(v.verify(noKid), /no kid/);
  const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).sign(kp.privateKey);
  await assert.rejects(v.verify(noExp), /"exp"/);
  const ok = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).setExpirationTime('1h').sign(kp.privateKey);
  await v.verify(ok);
  await assert.rejects(JwtVerifier.create({ source: staticSource({ keys: [] }), algorithms: [] }), /pin the algorithms/);
});

test('an unknown kid reloads the set, at most once per floor interval', async () => {
  const a = keyPair('ES256');
  const b = keyPair('ES256');
  const ja = await publicJwk('ES256', a);
  const jb = await publicJwk('ES256', b);
  let set: JWK[] = [ja];
  let now = 1_000_000;
  const v = await JwtVerifier.create({ source: async () => JSON.stringify({ keys: set }), algorithms: ['ES256'], now: () => now, minRefreshIntervalMs: 30_000 });
  set = [ja, jb];
  const tb = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: jb.kid! }).setExpirationTime('1h').sign(b.privateKey);
  now += 10_000;
  await assert.rejects(v.verify(tb), /reloaded 10s ago/, 'inside the floor: no reload');
  assert.equal(v.loads, 1);
  now += 20_000;
  await v.verify(tb);
  assert.equal(v.loads, 2, 'after the floor: one reload finds the new kid');
  now += 30_000;
  for (let i = 0; i < 20; i++) await assert.rejects(v.verify(tb.replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'made-up-' + i })).toString('base64url'))));
  assert.equal(v.loads, 3, 'a flood of made-up kids costs one read per floor interval');
});

test('a bad set is refused and the last good set stays in use', async () => {
  const a = keyPair('ES256');
  const ja = await publicJwk('ES256', a);
  let body: unknown = { keys: [ja] };
  let now = 0;
  const v = await JwtVerifier.create({ source: async () => JSON.stringify(body), algorithms: ['ES256'], now: () => now, refreshMs: 1000 });
  const priv = createPublicKey(a.privateKey) && (a.privateKey.export({ format: 'jwk' }) as JWK);
  body = { keys: [{ ...ja, d: priv.d }] };
  now = 60_000;
  const t = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: ja.kid! }).setExpirationTime('1h').sign(a.privateKey);
  await v.verify(t);
  assert.match(String(v.lastError), /private members \[d\]/);
});

test('JWK and set rules: private members, a foreign kid, weak RSA, use, duplicate kids', async () => {
  const [es] = vectors.filter((v) => v.alg === 'ES256');
  const bad: [unknown, RegExp][] = [
    [{ ...es.jwk, d: 'AAAA' }, /private members \[d\]/],
    [{ ...es.jwk, kid: 'other' }, /not its RFC 7638 thumbprint/],
    [{ ...es.jwk, use: 'enc' }, /use must be "sig"/],
    [{ ...es.jwk, alg: 'ES384' }, /not supported/],
    [{ ...es.jwk, alg: 'EdDSA' }, /Ed25519/],
  ];
  for (const [jwk, re] of bad) await assert.rejects(parsePublicJWK(jwk), (e) => e instanceof DocumentError && re.test(e.message));
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const wj = createPublicKey(weak.privateKey).export({ format: 'jwk' }) as JWK;
  await assert.rejects(parsePublicJWK({ ...wj, alg: 'RS256', kid: await calculateJwkThumbprint(wj) }), /at least 2048 bits, has 1024/);
  await assert.rejects(parseJwkSet({ keys: [es.jwk, es.jwk] }), /twice/);
  await assert.rejects(parseJwkSet({}), /"keys" array/);
});

test('keyring documents: bootstrap forms, and the structural rules of pkg/jwks', async () => {
  for (const t of ['', '  ', '{}', '{"algorithm":"EdDSA"}']) assert.equal((await parseJwtKeyring(t)).active, undefined);
  await assert.rejects(parseJwtKeyring('{"algorithim":"ES256"}'), /unknown field "algorithim"/);
  await assert.rejects(parseJwtKeyring('{"schemaVersion":2}'), /schemaVersion 2 is not supported/);
  await assert.rejects(parseJwtKeyring('{"algorithm":"HS256"}'), /not supported/);
  await assert.rejects(parseJwtKeyring('{"jwks":{"keys":[]}}'), /no active and next key/);
  const [es] = vectors.filter((v) => v.alg === 'ES256');
  const key = { kid: es.thumbprint, alg: 'ES256', privateKey: 'env1:AQ', publicJwk: es.jwk, createdAt: '2026-03-01T09:00:00Z', publishedAt: '2026-03-01T09:00:00Z' };
  await assert.rejects(parseJwtKeyring(JSON.stringify({ schemaVersion: 1, active: key, next: key, jwks: { keys: [es.jwk] } })), /appears twice/);
  await assert.rejects(parseJwtKeyring(JSON.stringify({ schemaVersion: 1, active: key })), /both an active and a next key/);
});
