// The Webhook-Signature scheme: "t=<unix>,v1=<hex HMAC-SHA-256 of "t.body">",
// parsing the header (bounded, up to eight v1 signatures), the timestamp
// tolerance, constant-time matching, and signing.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { ApiKeyError } from './format.js';

export const SIGNATURE_HEADER_NAME = 'Webhook-Signature';
export const DEFAULT_TOLERANCE_MS = 5 * 60_000;
export const MAX_SIGNATURE_HEADER_LEN = 1024;
const MAX_SIGNATURES = 8;

/** A parsed Webhook-Signature header: its timestamp (as sent and as seconds) and v1 signatures. */
export interface ParsedSignature { ts: string; unix: number; sigs: Buffer[] }

/** Parses a Webhook-Signature header; throws ApiKeyError oversized or malformed. */
export function parseSignatureHeader(h: string): ParsedSignature {
  if (h.length > MAX_SIGNATURE_HEADER_LEN || Buffer.byteLength(h, 'utf8') > MAX_SIGNATURE_HEADER_LEN) throw new ApiKeyError('oversized');
  let ts: string | undefined;
  let unix = 0;
  const sigs: Buffer[] = [];
  if (h !== '') {
    for (const part of h.split(',')) {
      const t = part.trim();
      const eq = t.indexOf('=');
      if (eq < 0) throw new ApiKeyError('malformed');
      const k = t.slice(0, eq);
      const v = t.slice(eq + 1);
      if (k === 't') {
        // As Go's strconv.ParseInt: optional sign, decimal digits, within int64; here also > 0.
        if (ts !== undefined || v.length > 20 || !/^\+?[0-9]+$/.test(v)) throw new ApiKeyError('malformed');
        const b = BigInt(v);
        if (b <= 0n || b > 9223372036854775807n) throw new ApiKeyError('malformed');
        ts = v;
        unix = Number(b);
      } else if (k === 'v1') {
        if (sigs.length === MAX_SIGNATURES || !/^[0-9a-fA-F]{64}$/.test(v)) throw new ApiKeyError('malformed');
        sigs.push(Buffer.from(v, 'hex'));
      }
      // Other schemes (v0, future versions) are ignored.
    }
  }
  if (ts === undefined || sigs.length === 0) throw new ApiKeyError('malformed');
  return { ts, unix, sigs };
}

/** Whether the header's timestamp is within toleranceMs of now, either way. */
export function fresh(p: ParsedSignature, now: Date, toleranceMs: number): boolean {
  const d = now.getTime() - p.unix * 1000;
  return d <= toleranceMs && d >= -toleranceMs;
}

/** The v1 signature: HMAC-SHA-256 of "ts.body" keyed with secret. */
function mac(secret: string | Uint8Array, ts: string, body: Uint8Array | string): Buffer {
  return createHmac('sha256', secret).update(ts).update('.').update(body).digest();
}

/** Whether any of the header's v1 signatures is the one of secret over body. */
export function matches(secret: string | Uint8Array, p: ParsedSignature, body: Uint8Array | string): boolean {
  const sum = mac(secret, p.ts, body);
  let ok = false;
  // Compare with every signature, so timing does not say which matched.
  for (const s of p.sigs) if (timingSafeEqual(sum, s)) ok = true;
  return ok;
}

/** The signature header for body at time t: "t=<unix>,v1=<hex HMAC-SHA-256 of "t.body">" keyed with secret. */
export function signatureHeader(secret: string | Uint8Array, t: Date, body: Uint8Array | string): string {
  const ts = String(Math.floor(t.getTime() / 1000));
  return `t=${ts},v1=` + mac(secret, ts, body).toString('hex');
}

/** Signs body with a webhook signing key (the whole key string). */
export function signWebhook(key: string, t: Date, body: Uint8Array | string): string {
  return signatureHeader(key, t, body);
}

/** Checks a signature header over body with one shared secret (e.g. a registration endpoint's HMAC key). */
export function verifySignatureHeader(secret: string | Uint8Array, header: string, body: Uint8Array | string, now: Date = new Date(), toleranceMs = DEFAULT_TOLERANCE_MS): void {
  const p = parseSignatureHeader(header);
  if (!fresh(p, now, toleranceMs)) throw new ApiKeyError('stale');
  if (!matches(secret, p, body)) throw new ApiKeyError('bad-signature');
}
