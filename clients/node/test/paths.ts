// Where the tests find the Go vectors and write what Go checks afterwards.
// The Go harness (internal/nodetest) sets the variables; run alone from
// clients/node, the defaults point into this repository.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const katDir = process.env.NODETEST_KAT_DIR ?? join(repo, 'internal', 'nodetest', 'testdata');
export const envelopeKatDir = process.env.NODETEST_ENVELOPE_KAT_DIR ?? join(repo, 'pkg', 'envelope', 'testdata');
export const outDir = process.env.NODETEST_OUT_DIR;

export function readJSON<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Writes a file for the Go side to check; a no-op when run without the harness. */
export function writeOut(name: string, v: unknown): void {
  if (!outDir) return;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, name), JSON.stringify(v, null, 2));
}
