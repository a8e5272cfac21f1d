// EncryptedColumn: values of one table column bound to their table, column
// and row, for an ORM subscriber or a migration (legacy plaintext told from
// damaged envelopes).

import { err, isNotEnvelope } from './format.js';
import { encodeText } from './text.js';
import type { Envelope } from './envelope.js';

/**
 * An encrypted table column, for a TypeORM or pg subscriber (the design's EncryptionSubscriber): each value
 * is bound to its table, column and row — in version 2 the table and column (and any further stable pairs,
 * a tenant say) go to the key provider and the row is the message context, so one cached data key serves a
 * whole column. A value copied to another row or column fails with context-mismatch.
 */
export class EncryptedColumn {
  readonly #env: Envelope;
  readonly #stable: Record<string, string>;

  constructor(env: Envelope, readonly table: string, readonly column: string, stable: Record<string, string> = {}) {
    if (!table || !column) throw err('malformed', 'column', 'a table and a column are required');
    for (const k of ['table', 'column', 'row']) if (Object.hasOwn(stable, k)) throw err('malformed', 'column', `the stable context may not use the reserved key "${k}"`);
    this.#env = env;
    this.#stable = { ...stable, table, column };
  }

  /** Encrypts the value of row rowId and returns its text form. */
  async encrypt(rowId: string, plaintext: Uint8Array | string): Promise<string> {
    if (!rowId) throw err('malformed', 'encrypt-field', 'a row id is required');
    return encodeText(await this.#env.encryptWith(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext, this.#stable, { row: rowId }));
  }

  /**
   * Decrypts the text stored in row rowId (format 1 or 2). Every failure throws; isNotEnvelope tells a value
   * that never was an envelope (legacy plaintext, to migrate) from a damaged or foreign one (never plaintext).
   */
  decrypt(rowId: string, text: string): Promise<Buffer> {
    if (!rowId) throw err('malformed', 'decrypt-field', 'a row id is required');
    return this.#env.decryptWith(text, this.#stable, { row: rowId });
  }

  /**
   * For migrations: returns the plaintext of an encrypted value, or the value itself when it never was an
   * envelope (no envelope prefix) — and says which. A damaged, forged or misplaced envelope still throws.
   */
  async decryptOrLegacy(rowId: string, value: string): Promise<{ plaintext: Buffer; legacy: boolean }> {
    try {
      return { plaintext: await this.decrypt(rowId, value), legacy: false };
    } catch (e) {
      if (isNotEnvelope(e)) return { plaintext: Buffer.from(value, 'utf8'), legacy: true };
      throw e;
    }
  }
}
