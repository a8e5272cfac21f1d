// The secret cache against moto's Secrets Manager (run from go test ./internal/nodetest; the notification
// parsing needs no server).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateSecretCommand, DeleteSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretCache, SecretUnavailableError, rotatedSecret, type Change } from '../src/cache.js';

const skip = process.env.AWS_ENDPOINT_URL ? false : 'needs moto: run `go test ./internal/nodetest`';
const sm = new SecretsManagerClient({});
after(() => sm.destroy());
let n = 0;

async function newSecret(value: string): Promise<string> {
  const out = await sm.send(new CreateSecretCommand({ Name: `/node/cache/${process.pid}/${n++}`, SecretString: value }));
  return out.ARN!;
}
const put = (id: string, value: string) => sm.send(new PutSecretValueCommand({ SecretId: id, SecretString: value }));

test('concurrent misses share one read; a fresh value is served without reads', { skip }, async () => {
  const id = await newSecret('v1');
  const c = new SecretCache({ client: sm });
  const vs = await Promise.all(Array.from({ length: 20 }, () => c.get(id)));
  assert.equal(c.reads, 1);
  assert.ok(vs.every((v) => v.value === 'v1' && v.versionId === vs[0].versionId && v.stages.includes('AWSCURRENT')));
  await c.get(id);
  assert.equal(c.reads, 1);
  assert.ok(!JSON.stringify(vs[0]).includes('v1'), 'the value stays out of JSON');
});

test('an old value is served at once while one background read replaces it; past maxStale a failing secret fails closed', { skip }, async () => {
  const id = await newSecret('old');
  let now = 1_000_000;
  const c = new SecretCache({ client: sm, ttlMs: 1000, maxStaleMs: 5000, now: () => now });
  const changes: Change[] = [];
  let replaced!: () => void;
  const second_read = new Promise<void>((r) => (replaced = r));
  c.subscribe((ch) => {
    changes.push(ch);
    if (changes.length === 2) replaced();
  });
  const first = await c.get(id);
  await put(id, 'new');
  now += 1500;
  assert.equal((await c.get(id)).value, 'old', 'served stale, without waiting');
  assert.equal((await c.get(id)).value, 'old');
  await second_read; // the background read found the new version
  assert.equal(c.reads, 2, 'one background read');
  const second = await c.get(id);
  assert.equal(second.value, 'new');
  assert.deepEqual(changes.map((ch) => [ch.oldVersionId, ch.newVersionId]), [[undefined, first.versionId], [first.versionId, second.versionId]]);
  assert.equal((await c.getVersion(id, first.versionId)).value, 'old', 'an old version is read once by id');
  await sm.send(new DeleteSecretCommand({ SecretId: id, ForceDeleteWithoutRecovery: true }));
  now += 6000;
  await assert.rejects(c.get(id), (e) => e instanceof SecretUnavailableError && !e.message.includes('new'));
});

test('refresh reads at once, but at most once per interval; invalidate re-reads and tells subscribers', { skip }, async () => {
  const id = await newSecret('a');
  let now = 0;
  const c = new SecretCache({ client: sm, minRefreshIntervalMs: 1000, now: () => now });
  await c.get(id);
  await put(id, 'b');
  assert.equal((await c.refresh(id)).value, 'b');
  await put(id, 'c');
  const storm = await Promise.all(Array.from({ length: 10 }, () => c.refresh(id)));
  assert.ok(storm.every((v) => v.value === 'b'), 'inside the interval: the cached value, no read');
  assert.equal(c.reads, 2);
  now += 1000;
  assert.equal((await c.refresh(id)).value, 'c');
  await put(id, 'd');
  const changed = new Promise<Change>((resolve) => c.subscribe(resolve));
  c.invalidate(id);
  assert.equal((await changed).stage, 'AWSCURRENT');
  assert.equal((await c.get(id)).value, 'd');
});

test('refreshSince returns a value read after the refusal, one read per interval however many ask', { skip }, async () => {
  const id = await newSecret('x1');
  const c = new SecretCache({ client: sm, minRefreshIntervalMs: 300 });
  await c.get(id);
  const refusedAt = c.clock();
  await put(id, 'x2');
  const storm = await Promise.all(Array.from({ length: 10 }, () => c.refreshSince(id, 'AWSCURRENT', refusedAt)));
  assert.ok(storm.every((v) => v.value === 'x2'));
  assert.equal(c.reads, 2, 'one read for the whole storm');
  assert.equal((await c.refreshSince(id, 'AWSCURRENT', refusedAt)).value, 'x2', 'a read after the refusal is reused');
  assert.equal(c.reads, 2);
  await put(id, 'x3');
  assert.equal((await c.refreshSince(id, 'AWSCURRENT', c.clock())).value, 'x3', 'a later refusal gets a later read (after its turn)');
  assert.equal(c.reads as number, 3);
});

test('rotation notifications and EventBridge events name the secret to invalidate; other messages do not', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:/app/db-AbCdEf';
  const note = { schemaVersion: 1, event: 'rotation.succeeded', kind: 'dbrotate', secretArn: arn, versionId: 'v', step: 'finishSecret', outcome: 'success' };
  assert.equal(rotatedSecret(JSON.stringify(note)), arn, 'raw message delivery');
  assert.equal(rotatedSecret(JSON.stringify({ Type: 'Notification', Message: JSON.stringify(note) })), arn, 'in the SNS envelope');
  assert.equal(rotatedSecret(JSON.stringify({ ...note, event: 'rotation.started' })), undefined);
  assert.equal(rotatedSecret(JSON.stringify({ ...note, event: 'rotation.failed', outcome: 'failure' })), undefined);
  const eb = { source: 'aws.secretsmanager', 'detail-type': 'AWS Service Event via CloudTrail', detail: { eventSource: 'secretsmanager.amazonaws.com', eventName: 'RotationSucceeded', additionalEventData: { SecretId: arn } } };
  assert.equal(rotatedSecret(JSON.stringify(eb)), arn);
  const stage = { source: 'aws.secretsmanager', 'detail-type': 'AWS API Call via CloudTrail', detail: { eventName: 'UpdateSecretVersionStage', requestParameters: { secretId: arn } } };
  assert.equal(rotatedSecret(JSON.stringify(stage)), arn);
  assert.equal(rotatedSecret(JSON.stringify({ ...eb, detail: { ...eb.detail, eventName: 'RotationFailed' } })), undefined);
  assert.equal(rotatedSecret('not json'), undefined);
});
