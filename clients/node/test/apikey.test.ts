import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  ApiKeyError, Keyring, MAX_KEY_LEN, checksum, hashKey, ownerId, parseKey, parseVerifierDoc, parseCallerSecret, pepperFingerprint,
  signWebhook, signatureHeader, verifySignatureHeader,
} from '../src/apikey.js';
import { DocumentError } from '../src/errors.js';
import { katDir, readJSON, writeOut } from './paths.js';

interface Vectors {
  pepper: string;
  pepperFingerprint: string;
  keys: { key: string; prefix: string; keyId: string; checksum: string; sha256: string; hmacSha256: string }[];
  bad: { key: string; error: string }[];
  owners: { arn: string; owner: string }[];
  webhooks: { secret: string; t: number; body: string; header: string }[];
  verifier: string;
  verifyCases: { key: string; now: string; keyId?: string; error?: string }[];
  webhookVerifier: string;
  signatureCases: { header: string; body: string; now: string; keyId?: string; error?: string }[];
}

const v = readJSON<Vectors>(join(katDir, 'kat-apikey.json'));
const pepper = Buffer.from(v.pepper, 'base64url');

function codeOf(f: () => unknown): string {
  try {
    f();
    return '';
  } catch (e) {
    assert.ok(e instanceof ApiKeyError, `not an ApiKeyError: ${e}`);
    return e.code;
  }
}

test('key checksums, key ids and hashes are the Go answers', () => {
  for (const k of v.keys) {
    assert.deepEqual(parseKey(k.key), { prefix: k.prefix, keyId: k.keyId });
    assert.equal(checksum(k.key.slice(0, -6)), k.checksum);
    assert.equal(hashKey('sha256', undefined, k.key).toString('base64url'), k.sha256);
    assert.equal(hashKey('hmac-sha256', pepper, k.key).toString('base64url'), k.hmacSha256);
  }
  assert.equal(pepperFingerprint(pepper), v.pepperFingerprint);
});

test('malformed keys fail as in Go, before any lookup', () => {
  for (const b of v.bad) assert.equal(codeOf(() => parseKey(b.key)), b.error, JSON.stringify(b.key.slice(0, 20)));
});

test('the length bound counts UTF-8 bytes, as Go does', () => {
  const k = v.keys[0].key;
  const wide = k.slice(0, k.length - 1) + 'é'.repeat(MAX_KEY_LEN - k.length + 1); // ≤ 68 characters, > 68 bytes
  assert.ok(wide.length <= MAX_KEY_LEN && Buffer.byteLength(wide) > MAX_KEY_LEN);
  assert.equal(codeOf(() => parseKey(wide)), 'oversized');
});

test('owner ids are the Go answers', () => {
  for (const o of v.owners) assert.equal(ownerId(o.arn), o.owner);
});

test('webhook signatures are the Go answers', () => {
  for (const w of v.webhooks) assert.equal(signWebhook(w.secret, new Date(w.t * 1000), w.body), w.header);
});

test('API keys verify against the verifier records exactly as in Go (statuses, windows, skew, prefixes)', () => {
  const ring = new Keyring(parseVerifierDoc(v.verifier), pepper);
  for (const c of v.verifyCases) {
    let got = '';
    const code = codeOf(() => {
      got = ring.verify(c.key, new Date(c.now));
    });
    assert.equal(code, c.error ?? '', `${c.now}`);
    if (!c.error) assert.equal(got, c.keyId);
  }
});

test('a keyring with hmac-sha256 records refuses a missing or wrong pepper', () => {
  const doc = parseVerifierDoc(v.verifier);
  assert.throws(() => new Keyring(doc), /no pepper/);
  assert.throws(() => new Keyring(doc, Buffer.alloc(32, 7)), /pepperFingerprint/);
});

test('webhook signature headers verify exactly as in Go (overlap, tolerance, malformed headers)', () => {
  const ring = new Keyring(parseVerifierDoc(v.webhookVerifier));
  for (const c of v.signatureCases) {
    let got = '';
    const code = codeOf(() => {
      got = ring.verifySignature(c.header, c.body, new Date(c.now));
    });
    assert.equal(code, c.error ?? '', c.header.slice(0, 60));
    if (!c.error) assert.equal(got, c.keyId);
  }
});

test('a shared-secret signature header round-trips and refuses another body', () => {
  const secret = Buffer.alloc(32, 1);
  const now = new Date();
  const h = signatureHeader(secret, now, 'body');
  verifySignatureHeader(secret, h, 'body', now);
  assert.equal(codeOf(() => verifySignatureHeader(secret, h, 'other', now)), 'bad-signature');
});

test('verifier documents are refused on the rules the Go reader applies, naming the field and never the value', () => {
  const base = JSON.parse(v.verifier);
  const cases: [string, (d: any) => void, RegExp][] = [
    ['unknown top-level field', (d) => (d.extra = 1), /unknown field "extra"/],
    ['another schemaVersion', (d) => (d.schemaVersion = 2), /schemaVersion 2/],
    ['unknown kind', (d) => (d.kind = 'x'), /kind must be/],
    ['bad keyId', (d) => (d.keys[0].keyId = 'short'), /keyId is not a key id/],
    ['bad status', (d) => (d.keys[0].status = 'paused'), /status must be/],
    ['short hash', (d) => (d.keys[0].hash = 'AAAA'), /hash is not 32 bytes/],
    ['padded hash', (d) => (d.keys[0].hash += '='), /hash is not 32 bytes/],
    ['API-key record holding a key', (d) => (d.keys[0].secret = v.keys[0].key), /must not hold the key/],
    ['duplicate keyId', (d) => d.keys.push({ ...d.keys[0] }), /duplicate keyId/],
    ['bad time', (d) => (d.keys[0].notBefore = '2026-03-01 09:00:00'), /RFC 3339/],
    ['unknown record field', (d) => (d.keys[0].Hash2 = 'x'), /unknown field/],
  ];
  for (const [name, mut, re] of cases) {
    const d = structuredClone(base);
    mut(d);
    assert.throws(() => parseVerifierDoc(JSON.stringify(d)), (e: unknown) => e instanceof DocumentError && re.test(e.message) && !e.message.includes(v.keys[0].key), name);
  }
  const w = JSON.parse(v.webhookVerifier);
  w.keys[0].secret = v.keys[0].key; // a key of another record
  assert.throws(() => parseVerifierDoc(JSON.stringify(w)), /secret is not the well-formed key of this record/);
});

test('caller secrets parse and keep the key out of JSON and inspection', () => {
  const k = v.keys[0];
  const c = parseCallerSecret(JSON.stringify({ schemaVersion: 1, kind: 'apikey', keyId: k.keyId, key: k.key, createdAt: '2026-03-01T09:00:00Z', expiresAt: '2026-05-30T09:00:00Z' }));
  assert.equal(c.key, k.key);
  assert.ok(!JSON.stringify(c).includes(k.key));
  assert.deepEqual(parseCallerSecret('{"schemaVersion":1,"kind":"webhook"}'), { kind: 'webhook' });
  assert.throws(() => parseCallerSecret(JSON.stringify({ schemaVersion: 1, kind: 'apikey', keyId: 'AAAAAAAAAAAA', key: k.key, createdAt: '2026-03-01T09:00:00Z', expiresAt: '2026-05-30T09:00:00Z' })), /keyId does not match/);
  assert.throws(() => parseCallerSecret(JSON.stringify({ schemaVersion: 1, kind: 'apikey', keyId: k.keyId, key: k.key, createdAt: '2026-03-01T09:00:00Z' })), /later expiresAt/);
});

test('signatures produced here are written for the Go side to verify', () => {
  const secret = v.keys[5].key;
  const out = [0, 1, 2].map((i) => {
    const body = `{"n":${i},"text":"grüße"}`;
    const t = new Date(Date.UTC(2026, 2, 1, 9, i));
    return { secret, t: Math.floor(t.getTime() / 1000), body, header: signWebhook(secret, t, body) };
  });
  writeOut('webhooks.json', out);
});
