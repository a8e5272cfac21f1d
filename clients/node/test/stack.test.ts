// Against the local stack the Go harness starts (internal/nodetest): moto's
// Secrets Manager, KMS, SNS and SQS, PostgreSQL with TLS, and the rotation
// functions under the Lambda runtime emulator. Rotations are requested from
// the harness over NODETEST_CONTROL_URL, so this file decides when they
// happen relative to its own traffic.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { KMSClient } from '@aws-sdk/client-kms';
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  ApiKeyError, ApiKeyVerifier, cachedSecret, fromCache, Envelope, JwtSigner, JwtVerifier, KmsProvider, RotatingPool, SecretCache, currentSecret,
  encodeText, parseCallerSecret, secretReader, signWebhook, EncryptedColumn, backfill,
} from '../src/index.js';
import { writeOut } from './paths.js';

const control = process.env.NODETEST_CONTROL_URL;
const skip = control ? false : 'needs the local stack: run `go test ./internal/nodetest`';
const env = (k: string) => process.env[k] ?? '';
const secret = (name: string) => env('NODETEST_SECRET_' + name.toUpperCase().replace(/-/g, '_'));

const sm = new SecretsManagerClient({});
const kms = new KMSClient({});
const sqs = new SQSClient({});
after(() => {
  sm.destroy();
  kms.destroy();
  sqs.destroy();
});

async function rotate(name: string): Promise<void> {
  const r = await fetch(`${control}/rotate/${name}`, { method: 'POST' });
  if (!r.ok) throw new Error(`rotation of ${name}: ${r.status} ${await r.text()}`);
}

async function stage(id: string, s: string): Promise<string> {
  const out = await sm.send(new GetSecretValueCommand({ SecretId: id, VersionStage: s }));
  return out.SecretString ?? '';
}

test('JWT: Node opens the key jwtrotate sealed under KMS, signs with its kid, and verifies Go tokens across a rotation', { skip }, async () => {
  const provider = await KmsProvider.create({ client: kms, keyId: env('NODETEST_KMS_KEY_ARN') });
  const envelope = new Envelope({ provider });
  const signer = await JwtSigner.create({ secret: currentSecret(sm, secret('jwt')), envelope });
  const fromSecret = await JwtVerifier.create({ source: secretReader(sm, secret('jwt')), algorithms: ['ES256'], minRefreshIntervalMs: 1 });
  const fromPublic = await JwtVerifier.create({ source: secretReader(sm, secret('jwt-public')), algorithms: ['ES256'], minRefreshIntervalMs: 1 });
  const goToken = env('NODETEST_GO_TOKEN');
  assert.ok(goToken, 'the harness passes a token signed in Go');
  for (const v of [fromSecret, fromPublic]) assert.equal((await v.verify(goToken)).payload.sub, 'go-signer');

  const before = await signer.sign({ sub: 'node-signer', exp: Math.floor(Date.now() / 1000) + 3600 });
  const kidBefore = signer.keyId;
  await rotate('jwt');
  await signer.refresh();
  assert.notEqual(signer.keyId, kidBefore, 'the rotation promoted the next key');
  const afterRotation = await signer.sign({ sub: 'node-signer', exp: Math.floor(Date.now() / 1000) + 3600 });
  for (const v of [fromSecret, fromPublic]) {
    await v.verify(before); // the retired key stays published
    await v.verify(afterRotation); // the new kid was published a rotation ago (or is found by the unknown-kid reload)
    await v.verify(goToken);
  }
  writeOut('jwt-stack.json', { tokens: [before, afterRotation], kids: [kidBefore, signer.keyId] });
});

test('JWT through one SecretCache: a rotation reaches signer and verifier by invalidation, one key opening per version', { skip }, async () => {
  const cache = new SecretCache({ client: sm, ttlMs: 3600_000 });
  const envelope = new Envelope({ provider: await KmsProvider.create({ client: kms, keyId: env('NODETEST_KMS_KEY_ARN') }) });
  const signer = await JwtSigner.create({ secret: cachedSecret(cache, secret('jwt')), envelope, refreshMs: 1 });
  const verifier = await JwtVerifier.create({ ...fromCache(cache, secret('jwt-public')), algorithms: ['ES256'], minRefreshIntervalMs: 1 });
  const exp = () => Math.floor(Date.now() / 1000) + 600;
  const t1 = await signer.sign({ sub: 'cached', exp: exp() });
  for (let i = 0; i < 5; i++) await signer.sign({ sub: 'cached', exp: exp() });
  assert.equal(signer.opens, 1, 'an unchanged version is not opened again');
  const kid1 = signer.keyId;
  await rotate('jwt');
  const moved = new Promise<void>((resolve) => cache.subscribe((ch) => ch.secretId === secret('jwt') && resolve()));
  cache.invalidate(secret('jwt')); // what a rotation.succeeded notification does
  await moved;
  const t2 = await signer.sign({ sub: 'cached', exp: exp() });
  assert.notEqual(signer.keyId, kid1);
  assert.equal(signer.opens, 2);
  await verifier.verify(t1);
  await verifier.verify(t2); // a kid the verifier's cached set may lack: one forced cache refresh
});

test('envelope: Node opens a Go envelope under moto\'s KMS and seals envelopes Go opens; the context is enforced', { skip }, async () => {
  const provider = await KmsProvider.create({ client: kms, keyId: env('NODETEST_KMS_KEY_ARN') });
  const envelope = new Envelope({ provider, cache: { maxAgeMs: 60_000 } });
  const goText = env('NODETEST_GO_ENVELOPE');
  const ctx = { table: 'payees', column: 'iban', row: '42' };
  assert.equal((await envelope.decrypt(goText, ctx)).toString(), 'sealed in Go');
  await assert.rejects(envelope.decrypt(goText, { ...ctx, row: '43' }), /context mismatch/);
  const calls = provider.calls;
  const made = [];
  for (let i = 0; i < 5; i++) made.push({ context: { ...ctx, row: String(i) }, plaintext: `sealed in Node ${i}`, text: encodeText(await envelope.encrypt(Buffer.from(`sealed in Node ${i}`), { ...ctx, row: String(i) })) });
  assert.equal(provider.calls - calls, 5, 'one data key per context');
  writeOut('envelopes-kms.json', made);
});

test('API keys: Node verifies keys apikeyrotate issued, both during the overlap and after it', { skip }, async () => {
  await rotate('apikey');
  const k1 = parseCallerSecret(await stage(secret('apikey'), 'AWSCURRENT')).key!;
  let now = Date.now();
  const v = await ApiKeyVerifier.create({ source: secretReader(sm, secret('apikey-verifier')), now: () => now, missRefreshMs: 1 });
  assert.equal(await v.verify(k1), k1.split('_')[1]);
  await rotate('apikey');
  const k2 = parseCallerSecret(await stage(secret('apikey'), 'AWSCURRENT')).key!;
  now += 5; // past the miss floor: the unknown key id reloads the records once
  assert.equal(await v.verify(k2), k2.split('_')[1], 'the new key verifies (found by the unknown-id reload)');
  assert.equal(await v.verify(k1), k1.split('_')[1], 'the previous key verifies during the overlap');
  const loads = v.loads;
  now += 25 * 3600_000; // past the 24 h overlap
  await assert.rejects(v.verify(k1), (e) => e instanceof ApiKeyError && e.code === 'expired');
  assert.equal(await v.verify(k2), k2.split('_')[1], 'the current key still verifies after the overlap');
  assert.ok(v.loads >= loads);
  await assert.rejects(v.verify(k1.slice(0, -1) + (k1.endsWith('A') ? 'B' : 'A')), (e) => e instanceof ApiKeyError && e.code === 'checksum');
  now = Date.now();
  await rotate('apikey');
  await v.reload();
  const k3 = parseCallerSecret(await stage(secret('apikey'), 'AWSCURRENT')).key!;
  assert.equal(await v.verify(k3), k3.split('_')[1], 'the newest key verifies');
  assert.equal(await v.verify(k2), k2.split('_')[1], 'the previous key verifies during its overlap');
  assert.equal(await v.verify(k1), k1.split('_')[1], 'the key from two rotations ago verifies until its own notAfter');
  now += 25 * 3600_000; // past every overlap
  await assert.rejects(v.verify(k1), (e) => e instanceof ApiKeyError && (e.code === 'expired' || e.code === 'revoked'), 'the key from two rotations ago fails after its notAfter');
  assert.equal(await v.verify(k3), k3.split('_')[1], 'the current key still verifies');
  const verifierText = await stage(secret('apikey-verifier'), 'AWSCURRENT');
  assert.ok(!verifierText.includes(k1) && !verifierText.includes(k2), 'the verifier secret holds no plaintext key');
});

test('API keys with a pepper: hmac-sha256 records verify with the pepper secret, and not without it', { skip }, async () => {
  await rotate('apikey-peppered');
  await rotate('apikey-peppered');
  const prev = parseCallerSecret(await stage(secret('apikey-peppered'), 'AWSPREVIOUS')).key!;
  const cur = parseCallerSecret(await stage(secret('apikey-peppered'), 'AWSCURRENT')).key!;
  const text = await stage(secret('apikey-peppered-verifier'), 'AWSCURRENT');
  assert.match(text, /"alg":"hmac-sha256"/);
  const pepper = async () => Buffer.from(await secretReader(sm, secret('apikey-pepper'))());
  const v = await ApiKeyVerifier.create({ source: secretReader(sm, secret('apikey-peppered-verifier')), pepper });
  assert.equal(await v.verify(cur), cur.split('_')[1]);
  assert.equal(await v.verify(prev), prev.split('_')[1], 'the previous key during the 1 h overlap');
  await assert.rejects(ApiKeyVerifier.create({ source: secretReader(sm, secret('apikey-peppered-verifier')) }), /no pepper/);
  await assert.rejects(ApiKeyVerifier.create({ source: secretReader(sm, secret('apikey-peppered-verifier')), pepper: async () => Buffer.alloc(32, 1) }), /pepperFingerprint/);
});

test('webhooks: a signature with the previous key verifies during the overlap; Node signatures go to Go', { skip }, async () => {
  await rotate('webhook');
  await rotate('webhook');
  const prev = parseCallerSecret(await stage(secret('webhook'), 'AWSPREVIOUS')).key!;
  const cur = parseCallerSecret(await stage(secret('webhook'), 'AWSCURRENT')).key!;
  const v = await ApiKeyVerifier.create({ source: secretReader(sm, secret('webhook-verifier')) });
  const body = '{"event":"invoice.paid"}';
  const now = new Date();
  assert.equal(await v.verifySignature(signWebhook(prev, now, body), body), prev.split('_')[1]);
  assert.equal(await v.verifySignature(signWebhook(cur, now, body), body), cur.split('_')[1]);
  await assert.rejects(v.verifySignature(signWebhook(cur, now, body), body + ' '), (e) => e instanceof ApiKeyError && e.code === 'bad-signature');
  writeOut('webhooks-stack.json', [prev, cur].map((k) => ({ keyId: k.split('_')[1], body, t: Math.floor(now.getTime() / 1000), header: signWebhook(k, now, body) })));
});

test('PostgreSQL: pools on AWSCURRENT answer every query while 6 alternating and 6 single-user rotations run', { skip }, async () => {
  const cache = new SecretCache({ client: sm, ttlMs: 500, minRefreshIntervalMs: 200 });
  const invalidated: string[] = [];
  const stop = cache.subscribeQueue(sqs, env('NODETEST_QUEUE_URL'), { waitTimeSeconds: 1, onMessage: (arn) => arn && invalidated.push(arn) });
  const tls = { caBundleFile: env('NODETEST_PG_CA_FILE') };
  const pools = {
    alternating: new RotatingPool({ cache, secretId: secret('db-alternating'), tls, pool: { max: 4, idleTimeoutMillis: 200, maxUses: 10 } }),
    single: new RotatingPool({ cache, secretId: secret('db-single'), tls, pool: { max: 4, idleTimeoutMillis: 200, maxUses: 10 } }),
  };
  const stats = { queries: 0, failed: 0, users: { alternating: new Set<string>(), single: new Set<string>() }, errors: [] as string[] };
  let running = true;
  const workers = Object.entries(pools).flatMap(([name, pool]) =>
    [0, 1, 2].map(async () => {
      while (running) {
        try {
          const r = await pool.query<{ u: string }>('SELECT current_user AS u');
          stats.users[name as 'single' | 'alternating'].add(r.rows[0].u);
          stats.queries++;
        } catch (e) {
          stats.failed++;
          if (stats.errors.length < 5) stats.errors.push(`${name}: ${(e as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }),
  );
  try {
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 6; i++) {
      for (const name of ['db-alternating', 'db-single']) {
        await rotate(name);
        await new Promise((r) => setTimeout(r, i % 2 ? 100 : 600)); // back to back, and across a cache refresh
      }
    }
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    running = false;
    await Promise.all(workers);
    await stop();
    await Promise.all(Object.values(pools).map((p) => p.end()));
  }
  const healed = pools.single.healed + pools.alternating.healed;
  console.log(`queries ${stats.queries}, failed ${stats.failed}, healed ${healed}, alternating users ${[...stats.users.alternating].sort().join(',')}, invalidations ${invalidated.length}`);
  assert.deepEqual(stats.errors, []);
  assert.equal(stats.failed, 0, 'no query failed');
  assert.ok(stats.queries > 100, `queries ran throughout (${stats.queries})`);
  assert.deepEqual([...stats.users.alternating].sort(), ['node_app', 'node_app_clone'], 'the alternating pool followed AWSCURRENT to the other user');
  assert.deepEqual([...stats.users.single], ['node_single']);
  assert.ok(invalidated.includes(secret('db-single')) && invalidated.includes(secret('db-alternating')), 'the SNS notifications reached the cache through SQS');
  assert.ok(readFileSync(env('NODETEST_PG_CA_FILE'), 'utf8').includes('BEGIN CERTIFICATE'));
});

test('PostgreSQL: a pool holding a password rotated away heals with one forced refresh and one retry (28P01)', { skip }, async () => {
  const cache = new SecretCache({ client: sm, ttlMs: 3600_000, minRefreshIntervalMs: 1000 });
  const events: string[] = [];
  // maxUses 1: every query logs in anew, so the next one after the rotation must authenticate.
  const pool = new RotatingPool({ cache, secretId: secret('db-single'), tls: { caBundleFile: env('NODETEST_PG_CA_FILE') }, pool: { max: 1, maxUses: 1 }, onEvent: (e) => events.push(e.type) });
  try {
    await pool.query('SELECT 1');
    const reads = cache.reads;
    await rotate('db-single'); // the cached AWSCURRENT (TTL 1 h) now holds a password the role no longer has
    const r = await pool.query<{ u: string }>('SELECT current_user AS u');
    assert.equal(r.rows[0].u, 'node_single');
    assert.equal(pool.healed, 1, 'one authentication failure, healed');
    assert.equal(cache.reads - reads, 1, 'with exactly one forced refresh');
    assert.deepEqual(events, ['pool', 'pool', 'healed']);
  } finally {
    await pool.end();
  }
});

test('PostgreSQL: a login between setSecret and finishSecret of a single-user rotation heals through AWSPENDING', { skip }, async () => {
  const cache = new SecretCache({ client: sm, ttlMs: 3600_000 });
  const events: string[] = [];
  const pool = new RotatingPool({ cache, secretId: secret('db-single'), tls: { caBundleFile: env('NODETEST_PG_CA_FILE') }, pool: { max: 1, maxUses: 1 }, onEvent: (e) => events.push(e.type) });
  try {
    await pool.query('SELECT 1');
    const held = await fetch(`${control}/rotate/db-single?hold=testSecret`, { method: 'POST' });
    assert.equal(held.status, 200, await held.text()); // setSecret ran: the role has AWSPENDING's password, AWSCURRENT is unchanged
    assert.equal((await pool.query<{ u: string }>('SELECT current_user AS u')).rows[0].u, 'node_single');
    assert.equal(pool.healed, 1);
    const released = await fetch(`${control}/release/db-single`, { method: 'POST' });
    assert.equal(released.status, 200, await released.text());
    const moved = new Promise<void>((resolve) => cache.subscribe((ch) => ch.stage === 'AWSCURRENT' && resolve()));
    cache.invalidate(secret('db-single')); // what the rotation.succeeded notification does
    await moved;
    await pool.query('SELECT 1');
    assert.equal(pool.healed, 1, 'after finishSecret the pool runs on the new AWSCURRENT without another failure');
    assert.deepEqual(events, ['pool', 'pool', 'healed', 'pool']);
  } finally {
    await pool.end();
  }
});

test('backfill: legacy plaintext is encrypted in place, envelopes that open are left, damaged ones reported and untouched, racing writes win', { skip }, async () => {
  const cache = new SecretCache({ client: sm });
  const pool = new RotatingPool({ cache, secretId: secret('db-single'), tls: { caBundleFile: env('NODETEST_PG_CA_FILE') } });
  const envelope = new Envelope({ provider: await KmsProvider.create({ client: kms, keyId: env('NODETEST_KMS_KEY_ARN') }), cache: { maxAgeMs: 60_000 } });
  const column = new EncryptedColumn(envelope, 'node_payees', 'iban');
  try {
    const sealed = await column.encrypt('p-sealed', 'DE00000000000000000001');
    const moved = await column.encrypt('p-other', 'DE00000000000000000002');
    const rows: [string, string | null][] = [
      ['p-01', 'DE89370400440532013000'], ['p-02', 'DE02120300000000202051'], ['p-03', 'legacy value'], ['p-04', null],
      ['p-race', 'DE75512108001245126199'], ['p-sealed', sealed], ['p-damaged', sealed.slice(0, -4)], ['p-moved', moved],
    ];
    for (const [id, iban] of rows) await pool.query('INSERT INTO node_payees (id, iban) VALUES ($1, $2)', [id, iban]);
    const racing = {
      query: async (text: string, values?: unknown[]) => {
        if (text.startsWith('UPDATE') && values?.[1] === 'p-race') await pool.query("UPDATE node_payees SET iban = 'written by the app' WHERE id = 'p-race'");
        return pool.query(text, values);
      },
    };
    const progress: number[] = [];
    const rep = await backfill(racing, { table: 'node_payees', idColumn: 'id', valueColumn: 'iban', column }, { batchSize: 3, progress: (p) => progress.push(p.scanned) });
    assert.deepEqual({ scanned: rep.scanned, changed: rep.changed, skipped: rep.skipped, raced: rep.raced, damaged: rep.damaged, done: rep.done }, { scanned: 7, changed: 3, skipped: 1, raced: 1, damaged: 2, done: true });
    assert.deepEqual(rep.damagedRows.map((d) => [d.rowId, d.error.kind]).sort(), [['p-damaged', 'malformed'], ['p-moved', 'context-mismatch']]);
    assert.deepEqual(progress, [3, 6, 7]);
    const after = new Map((await pool.query<{ id: string; iban: string | null }>('SELECT id, iban FROM node_payees')).rows.map((r) => [r.id, r.iban]));
    for (const [id, plain] of [['p-01', 'DE89370400440532013000'], ['p-02', 'DE02120300000000202051'], ['p-03', 'legacy value'], ['p-sealed', 'DE00000000000000000001']]) {
      assert.equal((await column.decrypt(id!, after.get(id!)!)).toString(), plain);
    }
    assert.equal(after.get('p-race'), 'written by the app', 'the application\'s write is kept');
    assert.equal(after.get('p-damaged'), sealed.slice(0, -4), 'a damaged value is never changed');
    assert.equal(after.get('p-moved'), moved);
    assert.equal(after.get('p-04'), null);
    const again = await backfill(pool, { table: 'node_payees', idColumn: 'id', valueColumn: 'iban', column });
    assert.equal(again.changed, 1, 'a second run encrypts what the application wrote in plaintext meanwhile');
  } finally {
    await pool.end();
  }
});
