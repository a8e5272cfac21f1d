// Strict readers for the suite's JSON documents. They mirror Go's
// encoding/json with DisallowUnknownFields: unknown members are refused, a
// member of the wrong type is refused, null is "absent". Errors name the
// field, never its value.

export type Obj = Record<string, unknown>;

/** The value of JSON text, or undefined when the text is not JSON (callers say what they expected). */
export function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Returns o with its members under their schema names, refusing unknown ones. As Go's encoding/json does,
 * a member name matches a field exactly or, failing that, ignoring ASCII letter case ("SchemaVersion" is
 * schemaVersion); when several members map to one field, the last one wins.
 */
export function fields(o: Obj, allowed: readonly string[], make: (msg: string) => Error, what: string): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) {
    const name = allowed.includes(k) ? k : allowed.find((a) => a.toLowerCase() === k.toLowerCase());
    if (name === undefined) throw make(`${what} has an unknown field "${safeName(k)}"`);
    out[name] = v;
  }
  return out;
}

/** safeName shows a member name without control characters, cut to 40. */
export function safeName(k: string): string {
  const s = k.replace(/[^\x20-\x7e]/g, '?');
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}

export function optString(o: Obj, f: string, make: (msg: string) => Error, what: string): string | undefined {
  const v = o[f];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw make(`${what} field "${f}" must be a string`);
  return v;
}

export function optInt(o: Obj, f: string, make: (msg: string) => Error, what: string): number | undefined {
  const v = o[f];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw make(`${what} field "${f}" must be an integer`);
  return v;
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 time as Go's time.Time does (to millisecond precision). */
export function optTime(o: Obj, f: string, make: (msg: string) => Error, what: string): Date | undefined {
  const s = optString(o, f, make, what);
  if (s === undefined) return undefined;
  const m = rfc3339.exec(s);
  const t = m ? Date.parse(s) : NaN;
  if (!m || Number.isNaN(t)) throw make(`${what} field "${f}" is not an RFC 3339 time`);
  return new Date(t);
}

/** Go's zero time.Time (0001-01-01T00:00:00Z), what a missing non-pointer time decodes to. */
export const zeroTime = new Date('0001-01-01T00:00:00Z');
