import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlindIndex, parseIndexKey } from '../src/blindindex.js';
import { readJSON } from './paths.js';

interface Vectors { key: string; cases: { table: string; column: string; bytes: number; value: string; index: string }[] }
const dir = process.env.NODETEST_GO_DIR;

test('blind indexes Go computed are reproduced here', { skip: dir ? false : 'run from go test ./internal/nodetest' }, () => {
  const v = readJSON<Vectors>(join(dir!, 'go-blindindex.json'));
  const key = parseIndexKey(v.key);
  assert.ok(v.cases.length >= 4);
  for (const c of v.cases) assert.equal(new BlindIndex(key, { table: c.table, column: c.column, bytes: c.bytes }).of(Buffer.from(c.value, 'hex')), c.index, `${c.table}.${c.column}/${c.bytes}`);
});

test('a blind index is per column, of the chosen length, and normalizes when asked', () => {
  const key = randomBytes(32);
  const a = new BlindIndex(key, { table: 'payees', column: 'iban' });
  const b = new BlindIndex(key, { table: 'payees', column: 'bic' });
  assert.equal(a.of('x'), a.of('x'));
  assert.notEqual(a.of('x'), b.of('x'), 'no two columns share an index key');
  assert.equal(Buffer.from(new BlindIndex(key, { table: 't', column: 'c', bytes: 8 }).of('x'), 'base64url').length, 8);
  const n = new BlindIndex(key, { table: 't', column: 'iban', normalize: (v) => Buffer.from(v.toString().replace(/\s/g, '').toUpperCase()) });
  assert.equal(n.of('de89 3704 0044 0532 0130 00'), n.of('DE89370400440532013000'));
  assert.throws(() => new BlindIndex(randomBytes(31), { table: 't', column: 'c' }), /at least 32/);
  assert.throws(() => new BlindIndex(key, { table: 't', column: 'c', bytes: 33 }), /outside 8..32/);
  assert.throws(() => parseIndexKey('not base64!'), /base64 key/);
  assert.deepEqual(parseIndexKey(key.toString('base64')), key);
  assert.deepEqual(parseIndexKey(key.toString('base64url')), key);
});
