// The envelope format's fixed parts (docs/envelope-format.md): the error
// every envelope failure is (EnvelopeError and its kinds), the encryption
// context type, the provider ids, sizes and bounds of the blob. Parsing,
// keys and encryption are in the modules beside this one.

export type EnvelopeErrorKind =
  | 'authentication' | 'context-mismatch' | 'key-not-allowed' | 'unsupported-version' | 'malformed' | 'provider';

const kindText: Record<EnvelopeErrorKind, string> = {
  'authentication': 'authentication failed',
  'context-mismatch': 'encryption context mismatch',
  'key-not-allowed': 'key not allowed',
  'unsupported-version': 'unsupported format version',
  'malformed': 'malformed',
  'provider': 'key provider failed',
};

/** Every envelope failure. kind matches pkg/envelope's Err values; the message holds no secret. */
export class EnvelopeError extends Error {
  override name = 'EnvelopeError';
  /** Set (with kind malformed) when the value has no envelope prefix at all: it never was an envelope. */
  notEnvelope = false;
  constructor(readonly kind: EnvelopeErrorKind, readonly op: string, detail = '', options?: { cause?: unknown }) {
    super(`envelope ${op}: ${kindText[kind]}${detail ? ': ' + detail : ''}`, options);
  }
}

export const err = (kind: EnvelopeErrorKind, op: string, detail = '', cause?: unknown) => new EnvelopeError(kind, op, detail, cause === undefined ? undefined : { cause });

/** Whether err says the value was never an envelope (no envelope text prefix), as opposed to a damaged one. */
export function isNotEnvelope(e: unknown): boolean {
  return e instanceof EnvelopeError && e.notEnvelope;
}

/** Encryption context: string pairs bound to the data key and the ciphertext. */
export type EncryptionContext = Readonly<Record<string, string>>;

export const PROVIDER_KMS = 0x01;
export const PROVIDER_LOCAL = 0x02;
export const MESSAGE_ID_SIZE = 32;
export const NONCE_SIZE = 12;
export const COMMIT_SIZE = 32;
export const TAG_SIZE = 16;
export const MAX_CONTEXT = 8192;
export const MAX_KEY_ID = 2048;
export const MAX_WRAPPED = 6144;
export const MAX_PLAINTEXT = 64 << 20;
export const MIN_CONTEXT = 2;
export const MAX_BODY = MAX_PLAINTEXT + TAG_SIZE;
export const MAX_BLOB_V1 = 88 + MAX_CONTEXT + MAX_KEY_ID + MAX_WRAPPED + MAX_BODY;
export const KEY_TAG_SIZE = 32;
export const FIXED_AAD_V2 = 1 + 1 + 2 + 2 + COMMIT_SIZE + NONCE_SIZE + 4;
export const MAX_BLOB_V2 = FIXED_AAD_V2 + 2 * MAX_CONTEXT + 2 + MAX_KEY_ID + 2 + MAX_WRAPPED + KEY_TAG_SIZE + MAX_BODY;
/** The most messages (and plaintext bytes) one data key may encrypt in version 2 (its nonce counter's range). */
export const MAX_MESSAGES_PER_DATA_KEY = 2 ** 32;
export const MAX_BYTES_PER_DATA_KEY = 2 ** 32;
