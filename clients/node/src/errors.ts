// Error classes. Every message names fields, kinds and key ids, never a
// secret value, a presented key or a ciphertext.

/** A secret document that does not meet its schema (the Go readers' "malformed" / "input" errors). */
export class DocumentError extends Error {
  override name = 'DocumentError';
}
