// Every secret document of the Go corpus (internal/nodetest/documents_test.go: valid documents of every kind
// and variants that each break one rule) is accepted here exactly when the Go reader accepts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseCallerSecret, parseVerifierDoc } from '../src/apikey.js';
import { parseJwkSet, parseJwtKeyring } from '../src/jwt.js';
import { parseDatabaseSecret } from '../src/db.js';
import { readJSON } from './paths.js';

interface DocCase { kind: string; name: string; text: string; ok: boolean }
const dir = process.env.NODETEST_GO_DIR;

const readers: Record<string, (text: string) => unknown> = {
  'apikey-caller': parseCallerSecret,
  'apikey-verifier': parseVerifierDoc,
  'jwt-keyring': parseJwtKeyring,
  'jwk-set': (t) => parseJwkSet(JSON.parse(t)),
  'db-secret': parseDatabaseSecret,
};

test('every document of the Go corpus is accepted here exactly when the Go reader accepts it', { skip: dir ? false : 'run from go test ./internal/nodetest' }, async () => {
  const cases = readJSON<DocCase[]>(join(dir!, 'go-documents.json'));
  assert.ok(cases.length > 80);
  const disagree: string[] = [];
  for (const c of cases) {
    let ok = true;
    let why = '';
    try {
      await readers[c.kind](c.text);
    } catch (e) {
      ok = false;
      why = (e as Error).message;
    }
    if (ok !== c.ok) disagree.push(`${c.kind} "${c.name}": Go ${c.ok ? 'accepts' : 'refuses'}, Node ${ok ? 'accepts' : 'refuses: ' + why}`);
  }
  assert.deepEqual(disagree, []);
});
