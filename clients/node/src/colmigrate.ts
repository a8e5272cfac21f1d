// Backfill of an encrypted column in PostgreSQL, with the rules of pkg/envelope/colmigrate: batches in row-id
// order, resumable from the last id reported; every change a conditional UPDATE … WHERE id = $id AND column =
// $old, so a row the application wrote meanwhile is left to its write (raced). A value without an envelope
// prefix is plaintext and is encrypted; a value with one is an envelope: left alone when it opens, reported as
// damaged and never changed when it does not. A key-provider failure stops the run (resume from lastId).

import pg from 'pg';
import { EnvelopeError, hasEnvelopePrefix, type EncryptedColumn } from './envelope.js';

/** Anything with pg's query(text, values): pg.Pool, pg.Client, RotatingPool. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[]; rowCount: number | null }>;
}

export interface BackfillTarget {
  table: string;
  idColumn: string;
  valueColumn: string;
  /** Encrypts the column (its table and column names are the ones bound into the values). */
  column: EncryptedColumn;
}

export interface BackfillProgress {
  lastId: string;
  scanned: number;
  changed: number;
  skipped: number;
  raced: number;
  damaged: number;
  done: boolean;
}

export interface BackfillReport extends BackfillProgress {
  /** Rows whose value has an envelope prefix but does not open: reported, not touched. */
  damagedRows: { rowId: string; error: EnvelopeError }[];
}

export async function backfill(db: Queryable, t: BackfillTarget, opts: { batchSize?: number; after?: string; progress?: (p: BackfillProgress) => void } = {}): Promise<BackfillReport> {
  if (!t.table || !t.idColumn || !t.valueColumn || !t.column) throw new Error('colmigrate: the target needs a table, an id column, a value column and an EncryptedColumn');
  const batch = opts.batchSize && opts.batchSize > 0 ? opts.batchSize : 500;
  const [tbl, id, val] = [t.table, t.idColumn, t.valueColumn].map((n) => pg.escapeIdentifier(n));
  const select = `SELECT ${id}::text AS id, ${val} AS value FROM ${tbl} WHERE ${id}::text > $1 AND ${val} IS NOT NULL ORDER BY ${id}::text LIMIT $2`;
  const update = `UPDATE ${tbl} SET ${val} = $1 WHERE ${id}::text = $2 AND ${val} = $3`;
  const rep: BackfillReport = { lastId: opts.after ?? '', scanned: 0, changed: 0, skipped: 0, raced: 0, damaged: 0, done: false, damagedRows: [] };
  for (;;) {
    const { rows } = await db.query(select, [rep.lastId, batch]);
    for (const r of rows as { id: string; value: string }[]) {
      rep.scanned++;
      if (!hasEnvelopePrefix(r.value)) {
        const text = await t.column.encrypt(r.id, r.value);
        const res = await db.query(update, [text, r.id, r.value]);
        if (res.rowCount) rep.changed++;
        else rep.raced++;
      } else {
        try {
          (await t.column.decrypt(r.id, r.value)).fill(0);
          rep.skipped++;
        } catch (e) {
          if (!(e instanceof EnvelopeError) || e.kind === 'provider') throw e; // stop: resume from lastId
          rep.damaged++;
          rep.damagedRows.push({ rowId: r.id, error: e });
        }
      }
      rep.lastId = r.id;
    }
    rep.done = rows.length < batch;
    opts.progress?.({ ...rep, damagedRows: undefined } as BackfillProgress);
    if (rep.done) return rep;
  }
}
