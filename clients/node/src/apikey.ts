// API keys and webhook signatures in the suite's format (docs/apikey.md):
// parsing with the CRC32 checksum checked before any lookup, the verifier
// document and its records, verification with sha256 / hmac-sha256 (pepper)
// in constant time, statuses and windows, and the Webhook-Signature scheme.
//
// This module is the public surface; the code is in ./apikey/: format.ts
// (the key, its checksum and hashes, ApiKeyError), records.ts (caller
// secret and verifier document), keyring.ts (Keyring: verification),
// webhook.ts (the Webhook-Signature header).

export {
  KEY_ID_LEN, BODY_LEN, CHECKSUM_LEN, MIN_PREFIX_LEN, MAX_PREFIX_LEN, MAX_KEY_LEN, MIN_PEPPER_LEN,
  ApiKeyError, validPrefix, checksum, parseKey, redactKey, hashKey, pepperFingerprint, ownerId,
  type ApiKeyCode, type ParsedKey, type HashAlg, type Status, type Kind,
} from './apikey/format.js';
export {
  SCHEMA_VERSION, MAX_DOC_BYTES, MAX_RECORDS, parseCallerSecret, parseVerifierDoc,
  type CallerSecret, type VerifierRecord, type VerifierDoc,
} from './apikey/records.js';
export { DEFAULT_SKEW_MS, Keyring, type KeyringOptions } from './apikey/keyring.js';
export { SIGNATURE_HEADER_NAME, DEFAULT_TOLERANCE_MS, MAX_SIGNATURE_HEADER_LEN, signatureHeader, signWebhook, verifySignatureHeader } from './apikey/webhook.js';
