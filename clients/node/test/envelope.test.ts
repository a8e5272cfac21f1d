import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  Envelope, EnvelopeError, LocalProvider, PROVIDER_KMS, canonicalContext, decodeText, encodeText, parseHeader,
  type DataKey, type Provider,
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
    const env = new Envelope({ provider: providerFor(v), random: () => rnd.shift()! });
    assert.equal((await env.encrypt(hex(v.plaintext), v.context ?? {})).toString('hex'), v.blob, v.name);
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
  const v2 = Buffer.from(blob);
  v2[0] = 2;
  await rejectsWith(env.decrypt(v2, ec), 'unsupported-version', 'version 2 blob in a v1 reader');
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

test('envelopes made here are written for the Go side to open', async () => {
  const kek = randomBytes(32);
  const env = new Envelope({ provider: new LocalProvider({ 'node-interop': kek }) });
  const cases: { context: Record<string, string>; plaintext: string }[] = [
    { context: {}, plaintext: '' },
    { context: { table: 'payees', column: 'iban', row: '7' }, plaintext: Buffer.from('DE89370400440532013000').toString('hex') },
    { context: { kid: 'k-ü-1', z: '' }, plaintext: randomBytes(3000).toString('hex') },
  ];
  const out = [];
  for (const c of cases) out.push({ ...c, text: encodeText(await env.encrypt(hex(c.plaintext), c.context)) });
  writeOut('envelopes-local.json', { keyId: 'node-interop', kek: kek.toString('base64'), cases: out });
});
