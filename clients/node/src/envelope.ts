// The suite's envelope format (docs/envelope-format.md), versions 1 and 2:
// AES-256-GCM under keys derived with HKDF-SHA-512 from a data key, a key
// commitment, the canonical encryption context as authenticated data, and
// the data key wrapped by AWS KMS (or the local provider). Version 1 derives
// a content key per message (random message id and nonce); version 2
// derives the keys once per data key, counts nonces per data key, splits the
// context into a stable part (bound to the data key) and a message part
// (authenticated only), and authenticates the key section with its own tag.
// Readers fail closed: a blob is parsed and checked completely before any
// key is touched, and every failure is an EnvelopeError of one kind with no
// plaintext.
//
// This module is the envelope's public surface; the code is in ./envelope/:
// format.ts (errors, sizes, bounds), context.ts (canonical contexts),
// header.ts (blob parsing), text.ts (text form), providers.ts (Provider and
// LocalProvider), keys.ts (key derivation, v2 sealing), envelope.ts (the
// Envelope and its data-key cache), column.ts (EncryptedColumn).

export {
  EnvelopeError, isNotEnvelope, type EnvelopeErrorKind, type EncryptionContext,
  PROVIDER_KMS, PROVIDER_LOCAL, MESSAGE_ID_SIZE, NONCE_SIZE, COMMIT_SIZE, TAG_SIZE, KEY_TAG_SIZE,
  MAX_CONTEXT, MAX_KEY_ID, MAX_WRAPPED, MAX_PLAINTEXT, MAX_MESSAGES_PER_DATA_KEY, MAX_BYTES_PER_DATA_KEY,
} from './envelope/format.js';
export { canonicalContext, parseCanonicalContext } from './envelope/context.js';
export { parseHeader, type Header } from './envelope/header.js';
export { hasEnvelopePrefix, encodeText, decodeText } from './envelope/text.js';
export { LocalProvider, type DataKey, type Provider } from './envelope/providers.js';
export { deriveKeysV2, sealV2, type KeysV2 } from './envelope/keys.js';
export { Envelope, type CacheConfig, type EnvelopeConfig } from './envelope/envelope.js';
export { EncryptedColumn } from './envelope/column.js';
