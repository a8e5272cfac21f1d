import { EncryptedColumn, Envelope, isNotEnvelope, type Provider } from '@rotation-suite/client';

// What the design's EncryptionSubscriber does, for one column: seal before insert/update,
// open after load. The row id must be known before the row is written (a UUID, say).
export function payeeIban(provider: Provider) {
  const envelope = new Envelope({ provider, cache: { maxAgeMs: 5 * 60_000 } }); // one data key per column for 5 min
  const column = new EncryptedColumn(envelope, 'payees', 'iban');
  return {
    beforeWrite: (row: { id: string; iban: string }) => column.encrypt(row.id, row.iban).then((iban) => ({ ...row, iban })),
    afterLoad: (row: { id: string; iban: string }) => column.decrypt(row.id, row.iban).then((b) => ({ ...row, iban: b.toString('utf8') })),
    // A migration: legacy plaintext is sealed; a damaged envelope stops the migration.
    migrate: async (row: { id: string; iban: string }) => {
      try {
        await column.decrypt(row.id, row.iban);
        return row; // already sealed
      } catch (e) {
        if (!isNotEnvelope(e)) throw e; // damaged, forged or moved: never treat it as plaintext
        return { ...row, iban: await column.encrypt(row.id, row.iban) };
      }
    },
  };
}
