// The examples of docs/consumers-node.md, run against the local stack, and the check that the guide shows
// them exactly as they are in clients/node/examples.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { KMSClient } from '@aws-sdk/client-kms';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LocalProvider } from '../src/index.js';
import { makeSigner, makeVerifier, issueAndCheck } from '../examples/jwt.js';
import { apiKeyGuard, makeApiKeyVerifier } from '../examples/apikey.js';
import { makePool } from '../examples/db.js';
import { payeeIban } from '../examples/column.js';
import { consumers } from '../examples/cache.js';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const repo = resolve(pkg, '..', '..');
const control = process.env.NODETEST_CONTROL_URL;
const skip = control ? false : 'needs the local stack: run `go test ./internal/nodetest`';
const secret = (name: string) => process.env['NODETEST_SECRET_' + name.toUpperCase().replace(/-/g, '_')] ?? '';
const sm = new SecretsManagerClient({});
const kms = new KMSClient({});
const sqs = new SQSClient({});
after(() => [sm, kms, sqs].forEach((c) => c.destroy()));

test('docs/consumers-node.md shows every example exactly as it is in clients/node/examples', () => {
  const guide = readFileSync(join(repo, 'docs', 'consumers-node.md'), 'utf8');
  const blocks = [...guide.matchAll(/```ts\n\/\/ (clients\/node\/examples\/[a-z]+\.ts)\n([\s\S]*?)```/g)];
  assert.deepEqual(blocks.map((b) => b[1]).sort(), ['apikey', 'cache', 'column', 'db', 'jwt'].map((n) => `clients/node/examples/${n}.ts`));
  for (const [, file, body] of blocks) assert.equal(body, readFileSync(join(repo, file), 'utf8'), `${file} differs from the guide`);
});

test('example: sign with the rotated key, verify on the public JWK Set', { skip }, async () => {
  const signer = await makeSigner(sm, kms, secret('jwt'), process.env.NODETEST_KMS_KEY_ARN!);
  const verifier = await makeVerifier(sm, secret('jwt-public'));
  assert.equal(await issueAndCheck(signer, verifier), 'user-1');
});

test('example: the API-key guard admits the current key and answers 401 otherwise', { skip }, async () => {
  const read = async () => JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: secret('apikey'), VersionStage: 'AWSCURRENT' }))).SecretString!);
  if (!(await read()).key) {
    const r = await fetch(`${control}/rotate/apikey`, { method: 'POST' }); // issue the first key
    assert.equal(r.status, 200, await r.text());
  }
  const caller = await read();
  const guard = apiKeyGuard(await makeApiKeyVerifier(sm, secret('apikey-verifier')));
  const server = createServer(async (req, res) => {
    const keyId = await guard(req, res);
    if (keyId) res.end(keyId);
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  try {
    const ok = await fetch(url, { headers: { authorization: `Bearer ${caller.key}` } });
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), caller.keyId);
    const bad = await fetch(url, { headers: { authorization: `Bearer ${caller.key.slice(0, -1)}x` } });
    assert.equal(bad.status, 401);
    assert.ok(!(await bad.text()).includes(caller.key.slice(0, 20)));
  } finally {
    server.close();
  }
});

test('example: the pool answers on AWSCURRENT with TLS verified against the CA bundle', { skip }, async () => {
  const { pool, close } = makePool(sm, sqs, secret('db-alternating'), process.env.NODETEST_QUEUE_URL!, process.env.NODETEST_PG_CA_FILE);
  try {
    const r = await pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    assert.equal(r.rows[0].ssl, true);
  } finally {
    await close();
  }
});

test('example: the encrypted column seals, opens and migrates legacy plaintext, and refuses a damaged value', async () => {
  const col = payeeIban(new LocalProvider({ 'example-kek': randomBytes(32) }));
  const sealed = await col.beforeWrite({ id: 'p-1', iban: 'DE89370400440532013000' });
  assert.match(sealed.iban, /^env2:/);
  assert.equal((await col.afterLoad(sealed)).iban, 'DE89370400440532013000');
  const migrated = await col.migrate({ id: 'p-2', iban: 'DE02120300000000202051' });
  assert.equal((await col.afterLoad(migrated)).iban, 'DE02120300000000202051');
  assert.deepEqual(await col.migrate(sealed), sealed, 'a sealed value is left alone');
  await assert.rejects(col.migrate({ ...sealed, iban: sealed.iban.slice(0, -3) }), /envelope/);
  await assert.rejects(col.migrate({ ...sealed, id: 'p-3' }), /context mismatch/);
});

test('example: one cache behind the signer, the verifier and the API-key verifier', { skip }, async () => {
  const c = await consumers(sm, kms, sqs, { jwt: secret('jwt'), jwks: secret('jwt-public'), apiKeys: secret('apikey-verifier'), queueUrl: process.env.NODETEST_QUEUE_URL!, kmsKeyArn: process.env.NODETEST_KMS_KEY_ARN! });
  try {
    const token = await c.signer.sign({ sub: 'example', exp: Math.floor(Date.now() / 1000) + 60 });
    assert.equal((await c.verifier.verify(token)).payload.sub, 'example');
    const caller = JSON.parse((await sm.send(new GetSecretValueCommand({ SecretId: secret('apikey'), VersionStage: 'AWSCURRENT' }))).SecretString!);
    if (caller.key) assert.equal(await c.apiKeys.verify(caller.key), caller.keyId);
  } finally {
    await c.stop();
  }
});
