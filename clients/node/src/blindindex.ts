// Blind indexes beside encrypted columns (docs/envelope-format.md §12, pkg/blindindex): an equality index
// that is the first 8–32 bytes (default 16) of HMAC-SHA-256 under a per-column key, unpadded base64url. The
// per-column key is HKDF-SHA-256(index key, salt = "rotation-suite/blind-index v1", info = 2-byte length ‖
// table ‖ 2-byte length ‖ column). It shows which rows of one column hold equal values (and so the column's
// frequency distribution), and whoever holds the index key can test guesses offline.

import { createHmac, hkdfSync } from 'node:crypto';

const LABEL = Buffer.from('rotation-suite/blind-index v1');

/** Decodes an index key as the Go loader does (base64, standard or URL alphabet, padding optional; at least 32 bytes). */
export function parseIndexKey(text: string): Buffer {
  const s = text.trim();
  const ok = /^[A-Za-z0-9+/]*={0,2}$/.test(s) || /^[A-Za-z0-9_-]*={0,2}$/.test(s);
  const b = ok ? Buffer.from(s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url') : Buffer.alloc(0);
  if (!ok || b.length < 32) throw new Error('blindindex: the secret does not hold a base64 key of at least 32 bytes');
  return b;
}

export interface BlindIndexConfig {
  table: string;
  column: string;
  /** Index length, 8 to 32 (default 16). Shorter indexes collide on purpose. */
  bytes?: number;
  /** Maps a value to its canonical form before hashing (say upper case without spaces for an IBAN). */
  normalize?: (value: Buffer) => Buffer;
}

export class BlindIndex {
  readonly #key: Buffer;
  readonly #bytes: number;
  readonly #normalize?: (value: Buffer) => Buffer;

  constructor(indexKey: Uint8Array, readonly cfg: BlindIndexConfig) {
    if (indexKey.length < 32) throw new Error(`blindindex: key of ${indexKey.length} bytes, want at least 32`);
    if (!cfg.table || !cfg.column) throw new Error('blindindex: a table and a column are required');
    const bytes = cfg.bytes ?? 16;
    if (!Number.isInteger(bytes) || bytes < 8 || bytes > 32) throw new Error(`blindindex: index length ${bytes} outside 8..32 bytes`);
    const t = Buffer.from(cfg.table, 'utf8');
    const c = Buffer.from(cfg.column, 'utf8');
    const len = (b: Buffer) => Buffer.from([b.length >> 8, b.length & 0xff]);
    this.#key = Buffer.from(hkdfSync('sha256', indexKey, LABEL, Buffer.concat([len(t), t, len(c), c]), 32));
    this.#bytes = bytes;
    this.#normalize = cfg.normalize;
  }

  /** The index of value. */
  of(value: Uint8Array | string): string {
    let v: Buffer = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    if (this.#normalize) v = this.#normalize(v);
    return createHmac('sha256', this.#key).update(v).digest().subarray(0, this.#bytes).toString('base64url');
  }

  toString(): string {
    return `BlindIndex{${this.cfg.table}.${this.cfg.column}}`;
  }
}
