// The binary blob's layout: parsing a version-1 or version-2 blob into its
// unauthenticated header and body with every bound and check of the format,
// before any key is touched. Nothing here decrypts.

import { err, COMMIT_SIZE, KEY_TAG_SIZE, MAX_BLOB_V1, MAX_BLOB_V2, MAX_BODY, MAX_CONTEXT, MAX_KEY_ID, MAX_WRAPPED, MESSAGE_ID_SIZE, MIN_CONTEXT, NONCE_SIZE, TAG_SIZE } from './format.js';
import { parseCanonicalContext, sharesKey } from './context.js';

/** The parsed, unauthenticated header of a blob (for routing and inventory only). */
export interface Header {
  version: 1 | 2;
  provider: number;
  /** Version 1 only: the random message id. */
  messageId?: Buffer;
  /** The canonical context (version 1), or the stable context (version 2). */
  context: Buffer;
  /** Version 2 only: the canonical message context. */
  messageContext?: Buffer;
  commitment: Buffer;
  nonce: Buffer;
  aad: Buffer; // bytes [0, end of the authenticated header)
  keyId: string;
  wrappedKey: Buffer;
  /** Version 2 only: the key section's tag. */
  keyTag?: Buffer;
  body: Buffer;
}

/**
 * Parses a binary blob of version 1 or 2 with every check of the format, in order: lengths against their
 * bounds before use and against what is left, canonical contexts (v2: disjoint), a UTF-8 key id, nothing
 * after the body. Nothing is decrypted.
 */
export function parseHeader(blob: Uint8Array, op = 'parse'): Header {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = (d: string) => err('malformed', op, d);
  if (b.length < 2) throw bad('shorter than 2 bytes');
  const version = b[0];
  if (version !== 1 && version !== 2) throw err('unsupported-version', op, `version ${b[0]}`);
  if (b.length > (version === 1 ? MAX_BLOB_V1 : MAX_BLOB_V2)) throw bad('longer than any well-formed blob');
  const provider = b[1];
  if (provider === 0x00 || provider === 0xff) throw bad('reserved provider id');
  let o = 2;
  const need = (n: number, what: string) => {
    if (o + n > b.length) throw bad(`truncated in ${what}`);
  };
  const ctxPart = (what: string) => {
    need(2, `the ${what} length`);
    const c = b.readUInt16BE(o);
    o += 2;
    if (c < MIN_CONTEXT || c > MAX_CONTEXT) throw bad(`${what} length out of bounds`);
    need(c, `the ${what}`);
    const ctx = b.subarray(o, o + c);
    o += c;
    parseCanonicalContext(ctx, op);
    return ctx;
  };
  let messageId: Buffer | undefined;
  let context: Buffer;
  let messageContext: Buffer | undefined;
  if (version === 1) {
    need(MESSAGE_ID_SIZE, 'the header');
    messageId = b.subarray(o, o + MESSAGE_ID_SIZE);
    o += MESSAGE_ID_SIZE;
    context = ctxPart('context');
  } else {
    context = ctxPart('stable context');
    messageContext = ctxPart('message context');
    if (sharesKey(context, messageContext)) throw bad('a context key is in both the stable and the message context');
  }
  need(COMMIT_SIZE + NONCE_SIZE + 4, 'the header');
  const commitment = b.subarray(o, o + COMMIT_SIZE);
  o += COMMIT_SIZE;
  const nonce = b.subarray(o, o + NONCE_SIZE);
  o += NONCE_SIZE;
  const bodyLen = b.readUInt32BE(o);
  o += 4;
  if (bodyLen < TAG_SIZE || bodyLen > MAX_BODY) throw bad('body length out of bounds');
  const aad = b.subarray(0, o);
  need(2, 'the key id length');
  const k = b.readUInt16BE(o);
  o += 2;
  if (k < 1 || k > MAX_KEY_ID) throw bad('key id length out of bounds');
  need(k + 2, 'the key id');
  const keyIdBytes = b.subarray(o, o + k);
  o += k;
  let keyId: string;
  try {
    keyId = new TextDecoder('utf-8', { fatal: true }).decode(keyIdBytes);
  } catch {
    throw bad('the key id is not UTF-8');
  }
  const e = b.readUInt16BE(o);
  o += 2;
  if (e < 1 || e > MAX_WRAPPED) throw bad('wrapped key length out of bounds');
  need(e + (version === 2 ? KEY_TAG_SIZE : 0), 'the wrapped key');
  const wrappedKey = b.subarray(o, o + e);
  o += e;
  let keyTag: Buffer | undefined;
  if (version === 2) {
    keyTag = b.subarray(o, o + KEY_TAG_SIZE);
    o += KEY_TAG_SIZE;
  }
  need(bodyLen, 'the body');
  const body = b.subarray(o, o + bodyLen);
  o += bodyLen;
  if (o !== b.length) throw bad('trailing bytes after the body');
  return { version, provider, messageId, context, messageContext, commitment, nonce, aad, keyId, wrappedKey, keyTag, body };
}
