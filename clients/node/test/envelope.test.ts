import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  deriveKeysV2, sealV2, EncryptedColumn, Envelope, EnvelopeError, LocalProvider, PROVIDER_KMS, canonicalContext, decodeText, encodeText, hasEnvelopePrefix,
  isNotEnvelope, parseHeader, type DataKey, type Provider,
} from '../src/envelope.js';
import { envelopeKatDir, readJSON, writeOut } from './paths.js';

interface Vector {
  name: string;
  provider: 'static' | 'local';
  dataKey: string;
  localKek: string;
  keyId: string;
  edk: string;
  messageId: string;
  nonce: string;
  context: Record<string, string> | null;
  plaintext: string;
  blob: string;
  text: string;
}

const vectors = readJSON<Vector[]>(join(envelopeKatDir, 'kat-v1.json'));
const hex = (s: string) => Buffer.from(s, 'hex');

/** Hands out one fixed data key, reporting itself as KMS (the format does not depend on how the key was wrapped). */
class StaticProvider implements Provider {
  readonly id = PROVIDER_KMS;
  calls = 0;
  constructor(readonly keyId: string, readonly edk: Buffer, readonly dk: Buffer) {}
  allowed(id: string) {
    return id === this.keyId;
  }
  async generateDataKey(): Promise<DataKey> {
    this.calls++;
    return { keyId: this.keyId, encrypted: Buffer.from(this.edk), plaintext: Buffer.from(this.dk) };
  }
  async decryptDataKey(keyId: string, edk: Buffer): Promise<DataKey> {
    this.calls++;
    if (keyId !== this.keyId || !edk.equals(this.edk)) throw new EnvelopeError('authentication', 'static', 'unknown wrapped key');
    return { keyId, encrypted: edk, plaintext: Buffer.from(this.dk) };
  }
}

function providerFor(v: Vector): Provider {
  return v.provider === 'local' ? new LocalProvider({ [v.keyId]: hex(v.localKek) }) : new StaticProvider(v.keyId, hex(v.edk), hex(v.dataKey));
}

function kindOf(e: unknown): string {
  assert.ok(e instanceof EnvelopeError, `not an EnvelopeError: ${e}`);
  return e.kind;
}

async function rejectsWith(p: Promise<unknown>, kind: string, msg: string) {
  await assert.rejects(p, (e) => kindOf(e) === kind || assert.fail(`${msg}: got ${(e as Error).message}`), msg);
}

test('every Go known-answer vector (v1) decrypts, from the blob and from its text form', async () => {
  assert.ok(vectors.length >= 4);
  for (const v of vectors) {
    const env = new Envelope({ provider: providerFor(v) });
    assert.deepEqual(await env.decrypt(hex(v.blob), v.context ?? {}), hex(v.plaintext), v.name);
    assert.deepEqual(await env.decrypt(v.text, v.context ?? {}), hex(v.plaintext), v.name);
    assert.equal(encodeText(hex(v.blob)), v.text);
  }
});

test('encrypting the vectors\' inputs reproduces the Go blobs byte for byte', async () => {
  for (const v of vectors.filter((v) => v.provider === 'static')) {
    const rnd = [hex(v.messageId), hex(v.nonce)];
    const env = new Envelope({ provider: providerFor(v), writeVersion: 1, random: () => rnd.shift()! });
    assert.equal((await env.encrypt(hex(v.plaintext), v.context ?? {})).toString('hex'), v.blob, v.name);
  }
});

interface VectorV2 {
  name: string;
  dataKey: string;
  providerId: number;
  keyId: string;
  edk: string;
  stableContext: Record<string, string>;
  messageContext: Record<string, string>;
  sequence: number;
  plaintext: string;
  contentKey: string;
  keyTagKey: string;
  commitment: string;
  keyTag: string;
  blob: string;
  text: string;
}

const vectorsV2 = readJSON<VectorV2[]>(join(envelopeKatDir, 'kat-v2.json'));

test('format 2: the Go known-answer vectors\' keys, tags and blobs are reproduced byte for byte, and every blob opens', async () => {
  assert.ok(vectorsV2.length >= 3);
  for (const v of vectorsV2) {
    const stable = canonicalContext(v.stableContext);
    const k = deriveKeysV2(hex(v.dataKey), v.providerId, stable, v.keyId, hex(v.edk));
    assert.equal(k.contentKey.toString('hex'), v.contentKey, v.name);
    assert.equal(k.keyTagKey.toString('hex'), v.keyTagKey, v.name);
    assert.equal(k.commitment.toString('hex'), v.commitment, v.name);
    assert.equal(k.keyTag.toString('hex'), v.keyTag, v.name);
    const blob = sealV2(k, v.providerId, v.keyId, hex(v.edk), stable, canonicalContext(v.messageContext), v.sequence, hex(v.plaintext));
    assert.equal(blob.toString('hex'), v.blob, v.name);
    assert.equal(encodeText(blob), v.text, v.name);
    const p = new StaticProvider(v.keyId, hex(v.edk), hex(v.dataKey));
    const provider: Provider = { ...p, id: v.providerId, allowed: (id) => p.allowed(id), generateDataKey: () => p.generateDataKey(), decryptDataKey: (id, e) => p.decryptDataKey(id, e) };
    const env = new Envelope({ provider });
    assert.equal((await env.decryptWith(v.text, v.stableContext, v.messageContext)).toString('hex'), v.plaintext, v.name);
    await rejectsWith(env.decryptWith(v.text, v.stableContext, { ...v.messageContext, other: 'x' }), 'context-mismatch', 'another message context');
  }
});

test('flipping any byte of a blob fails closed with a kind, never with plaintext', async () => {
  const v = vectors[1];
  const blob = hex(v.blob);
  const env = new Envelope({ provider: providerFor(v) });
  const kinds = new Set<string>();
  for (let i = 0; i < blob.length; i++) {
    const b = Buffer.from(blob);
    b[i] ^= 0x01;
    try {
      await env.decrypt(b, v.context ?? {});
      assert.fail(`byte ${i} flipped still decrypts`);
    } catch (e) {
      kinds.add(kindOf(e));
    }
  }
  assert.deepEqual([...kinds].sort(), ['authentication', 'context-mismatch', 'key-not-allowed', 'malformed', 'unsupported-version']);
});

test('the reader refuses truncation, trailing bytes, another context, an unlisted key and a future version', async () => {
  const v = vectors[1];
  const blob = hex(v.blob);
  const ec = v.context ?? {};
  const env = new Envelope({ provider: providerFor(v) });
  await rejectsWith(env.decrypt(blob.subarray(0, blob.length - 1), ec), 'malformed', 'truncated');
  await rejectsWith(env.decrypt(Buffer.concat([blob, Buffer.from([0])]), ec), 'malformed', 'trailing byte');
  await rejectsWith(env.decrypt(blob, { ...ec, row: '43' }), 'context-mismatch', 'another row');
  await rejectsWith(env.decrypt(blob, {}), 'context-mismatch', 'no context');
  const other = new Envelope({ provider: new StaticProvider('arn:aws:kms:us-east-1:123456789012:key/other', hex(v.edk), hex(v.dataKey)) });
  await rejectsWith(other.decrypt(blob, ec), 'key-not-allowed', 'unlisted key');
  const v3 = Buffer.from(blob);
  v3[0] = 3;
  await rejectsWith(env.decrypt(v3, ec), 'unsupported-version', 'a future version');
  assert.throws(() => decodeText('env9:AQ'), (e) => kindOf(e) === 'unsupported-version');
  assert.throws(() => decodeText(v.text + '='), (e) => kindOf(e) === 'malformed');
  assert.throws(() => decodeText(' ' + v.text), (e) => kindOf(e) === 'malformed');
  assert.throws(() => decodeText(v.text.replace('env1:', 'env1:+')), (e) => kindOf(e) === 'malformed');
  assert.throws(() => parseHeader(Buffer.from([1])), (e) => kindOf(e) === 'malformed');
});

test('a wrapped key from another message fails the commitment', async () => {
  const kek = randomBytes(32);
  const env = new Envelope({ provider: new LocalProvider({ k1: kek }) });
  const a = await env.encrypt(Buffer.from('a'), { t: '1' });
  const b = await env.encrypt(Buffer.from('b'), { t: '1' });
  const ha = parseHeader(a);
  const hb = parseHeader(b);
  // Splice b's key section into a: same length (local wraps are 60 bytes).
  const spliced = Buffer.concat([ha.aad, a.subarray(ha.aad.length, a.length - ha.body.length - hb.wrappedKey.length), hb.wrappedKey, ha.body]);
  await rejectsWith(env.decrypt(spliced, { t: '1' }), 'authentication', 'spliced key');
});

test('canonical contexts sort by key bytes and refuse what a writer would not write', () => {
  assert.equal(canonicalContext({ b: '2', a: '1', 'é': '', Z: 'z' }).toString('hex'), '0004' + '0001' + '5a' + '0001' + '7a' + '0001' + '61' + '0001' + '31' + '0001' + '62' + '0001' + '32' + '0002' + 'c3a9' + '0000');
  assert.equal(canonicalContext({}).toString('hex'), '0000');
  assert.throws(() => canonicalContext({ '': 'x' }), (e) => kindOf(e) === 'malformed');
  assert.throws(() => canonicalContext({ k: 'x'.repeat(9000) }), (e) => kindOf(e) === 'malformed');
  assert.throws(() => canonicalContext({ k: '\ud800' }), (e) => kindOf(e) === 'malformed');
});

test('the data-key cache serves many messages with one provider call, per context, within its limits', async () => {
  const v = vectors[0];
  const p = new StaticProvider(v.keyId, hex(v.edk), hex(v.dataKey));
  let now = 0;
  const env = new Envelope({ provider: p, cache: { maxAgeMs: 1000, maxMessages: 3, maxEntries: 10 }, now: () => now });
  const ec = { table: 't' };
  const blobs = await Promise.all([1, 2, 3].map((i) => env.encrypt(Buffer.from(String(i)), ec)));
  assert.equal(p.calls, 1, 'concurrent misses make one provider call');
  await env.encrypt(Buffer.from('4'), ec);
  assert.equal(p.calls, 2, 'maxMessages starts a new key');
  await env.encrypt(Buffer.from('5'), { table: 'other' });
  assert.equal(p.calls, 3, 'another context, another key');
  for (const b of blobs) await env.decrypt(b, ec);
  assert.equal(p.calls, 4, 'decryption caches the unwrapped key once');
  await rejectsWith(env.decrypt(blobs[0], { table: 'other' }), 'context-mismatch', 'a cached key never serves another context');
  now = 1000;
  await env.decrypt(blobs[0], ec);
  assert.equal(p.calls, 5, 'maxAge expires cached keys');
  assert.throws(() => new Envelope({ provider: p, cache: { maxAgeMs: 0 } }), (e) => kindOf(e) === 'malformed');
});

test('version 2: round trip, one data key per stable context, counter nonces, rows bound by the message context', async () => {
  const p = new LocalProvider({ k: randomBytes(32) });
  let calls = 0;
  const counting: Provider = { id: p.id, allowed: (id) => p.allowed(id), generateDataKey: (a, b) => (calls++, p.generateDataKey(a, b)), decryptDataKey: (a, b, c, d) => (calls++, p.decryptDataKey(a, b, c, d)) };
  const env = new Envelope({ provider: counting, cache: { maxAgeMs: 60_000 } });
  const col = new EncryptedColumn(env, 'payees', 'iban', { tenant: 't1' });
  const texts = await Promise.all(['a', 'b', 'c', 'd'].map((v, i) => col.encrypt(String(i), v)));
  assert.equal(calls, 1, 'one data key for the whole column');
  assert.ok(texts.every((t) => t.startsWith('env2:')));
  const nonces = texts.map((t) => parseHeader(decodeText(t)).nonce.toString('hex'));
  assert.deepEqual(nonces, ['000000000000000000000000', '000000000000000000000001', '000000000000000000000002', '000000000000000000000003']);
  const reader = new Envelope({ provider: counting, cache: { maxAgeMs: 60_000 } });
  const rcol = new EncryptedColumn(reader, 'payees', 'iban', { tenant: 't1' });
  for (const [i, t] of texts.entries()) assert.equal((await rcol.decrypt(String(i), t)).toString(), 'abcd'[i]);
  assert.equal(calls, 2, 'one unwrap for every row under that data key');
  await rejectsWith(rcol.decrypt('1', texts[0]), 'context-mismatch', 'a value moved to another row');
  await rejectsWith(new EncryptedColumn(reader, 'payees', 'bic', { tenant: 't1' }).decrypt('0', texts[0]), 'context-mismatch', 'another column');
  await rejectsWith(env.encryptWith(Buffer.from('x'), { row: '1' }, { row: '2' }), 'malformed', 'a key in both contexts');
  assert.throws(() => new EncryptedColumn(env, 't', 'c', { row: 'x' }), (e) => kindOf(e) === 'malformed');
});

test('version 2: no changed byte of a blob opens, and each failure has a kind', async () => {
  const env = new Envelope({ provider: new LocalProvider({ k: randomBytes(32) }) });
  const blob = await env.encryptWith(Buffer.from('version two'), { table: 't' }, { row: '7' });
  const kinds = new Set<string>();
  for (let i = 0; i < blob.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const b = Buffer.from(blob);
      b[i] ^= bit;
      try {
        await env.decryptWith(b, { table: 't' }, { row: '7' });
        assert.fail(`byte ${i} flipped still decrypts`);
      } catch (e) {
        kinds.add(kindOf(e));
      }
    }
  }
  assert.deepEqual([...kinds].sort(), ['authentication', 'context-mismatch', 'key-not-allowed', 'malformed', 'unsupported-version']);
  assert.equal((await env.decryptWith(blob, { table: 't' }, { row: '7' })).toString(), 'version two');
});

test('migrations: a value without an envelope prefix is "not an envelope"; any prefixed value that fails is damaged, never plaintext', async () => {
  const env = new Envelope({ provider: new LocalProvider({ k: randomBytes(32) }) });
  const col = new EncryptedColumn(env, 'users', 'email');
  const good = await col.encrypt('1', 'a@example.com');
  assert.deepEqual(await col.decryptOrLegacy('1', good), { plaintext: Buffer.from('a@example.com'), legacy: false });
  assert.deepEqual(await col.decryptOrLegacy('1', 'legacy@example.com'), { plaintext: Buffer.from('legacy@example.com'), legacy: true });
  for (const damaged of [good.slice(0, -2), good.replace('env2:', 'env1:'), 'env2:', 'env7:AAAA', good + 'A', good.slice(0, 10) + '!' + good.slice(11)]) {
    await assert.rejects(col.decryptOrLegacy('1', damaged), (e) => !isNotEnvelope(e) && e instanceof EnvelopeError, damaged.slice(0, 12));
  }
  await assert.rejects(col.decryptOrLegacy('2', good), (e) => kindOf(e) === 'context-mismatch');
  assert.equal(hasEnvelopePrefix('env12:x'), true);
  assert.equal(hasEnvelopePrefix('env123456789:x'), true, 'nine digits, as pkg/envelope bounds the prefix');
  assert.equal(hasEnvelopePrefix('env1234567890:x'), false);
  assert.equal(hasEnvelopePrefix('envelope'), false);
  await assert.rejects(col.decrypt('1', 'plain'), (e) => isNotEnvelope(e) && kindOf(e) === 'malformed');
});

test('envelopes made here, in both formats, are written for the Go side to open', async () => {
  const kek = randomBytes(32);
  const out = [];
  for (const writeVersion of [1, 2] as const) {
    const env = new Envelope({ provider: new LocalProvider({ 'node-interop': kek }), writeVersion, cache: { maxAgeMs: 60_000 } });
    const cases: { context: Record<string, string>; message?: Record<string, string>; plaintext: string }[] = [
      { context: {}, plaintext: '' },
      { context: { table: 'payees', column: 'iban' }, message: { row: '7' }, plaintext: Buffer.from('DE89370400440532013000').toString('hex') },
      { context: { table: 'payees', column: 'iban' }, message: { row: '8' }, plaintext: Buffer.from('DE89370400440532013001').toString('hex') },
      { context: { kid: 'k-ü-1', z: '' }, plaintext: randomBytes(3000).toString('hex') },
    ];
    for (const c of cases) out.push({ ...c, text: encodeText(await env.encryptWith(hex(c.plaintext), c.context, c.message ?? {})) });
  }
  assert.ok(out.some((c) => c.text.startsWith('env1:')) && out.some((c) => c.text.startsWith('env2:')));
  writeOut('envelopes-local.json', { keyId: 'node-interop', kek: kek.toString('base64'), cases: out });
});

test('envelopes Go sealed in both formats open here', { skip: process.env.NODETEST_GO_DIR ? false : 'run from go test ./internal/nodetest' }, async () => {
  const f = readJSON<{ keyId: string; kek: string; cases: { context: Record<string, string>; message?: Record<string, string>; plaintext: string; text: string }[] }>(join(process.env.NODETEST_GO_DIR!, 'go-envelopes-local.json'));
  const env = new Envelope({ provider: new LocalProvider({ [f.keyId]: f.kek }) });
  assert.ok(f.cases.some((c) => c.text.startsWith('env1:')) && f.cases.some((c) => c.text.startsWith('env2:')));
  for (const c of f.cases) {
    assert.equal((await env.decryptWith(c.text, c.context, c.message ?? {})).toString('hex'), c.plaintext, c.text.slice(0, 5));
    await rejectsWith(env.decryptWith(c.text, c.context, { ...c.message, row: 'other' }), 'context-mismatch', 'another row');
  }
});
