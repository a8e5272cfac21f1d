import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentError } from '../src/errors.js';
import { isAuthFailure, parseDatabaseSecret, tlsFor } from '../src/db.js';

const base = { engine: 'postgres', host: 'db.example.com', port: 5432, username: 'app_user', password: 'hunter2-is-not-a-password', dbname: 'app' };
const parse = (o: unknown) => parseDatabaseSecret(JSON.stringify(o));

test('database secrets in the shape of AWS\'s templates parse, keeping the password out of JSON', () => {
  const s = parse({ ...base, port: '6432', extra: 'kept by the rotation, ignored here' });
  assert.equal(s.port, 6432);
  assert.equal(s.sslmode, 'verify-full', 'TLS with verification unless the secret says otherwise');
  assert.equal(s.password, base.password);
  assert.ok(!JSON.stringify(s).includes(base.password));
  assert.equal(parse({ host: 'h', username: 'u', password: 'p' }).dbname, 'postgres');
  assert.deepEqual(parse({ ...base, userpair: ['app_user', 'app_user_b'] }).userpair, ['app_user', 'app_user_b']);
});

test('database secrets are refused on the rules of the rotation function, never quoting a value', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...base, engine: 'mysql' }, /engine/],
    [{ ...base, host: 'a b' }, /host/],
    [{ ...base, port: 0 }, /port/],
    [{ ...base, port: 'x' }, /port/],
    [{ ...base, port: true }, /port/],
    [{ ...base, password: '' }, /"password"/],
    [{ ...base, username: "x'; DROP ROLE y; --" }, /role name/],
    [{ ...base, username: 'pg_monitor' }, /role name/],
    [{ ...base, username: 'public' }, /role name/],
    [{ ...base, sslmode: 'prefer' }, /no fallback mode/],
    [{ ...base, password: 5 }, /"password" must be a string/],
    [{ ...base, userpair: ['a_1'] }, /exactly two/],
    [{ ...base, userpair: ['other_a', 'other_b'] }, /not one of/],
    [[base], /not a JSON object/],
  ];
  for (const [o, re] of cases) {
    assert.throws(() => parse(o), (e) => e instanceof DocumentError && re.test(e.message) && !e.message.includes(base.password), JSON.stringify(o).slice(0, 60));
  }
});

test('TLS as dbrotate connects: verify-full by name, verify-ca without the name, require without verification, disable only when allowed', () => {
  const full = tlsFor(parse({ ...base, sslservername: 'cluster.internal' }));
  assert.ok(full && full.rejectUnauthorized === true && full.servername === 'cluster.internal');
  assert.ok(full && full.checkServerIdentity!('db.example.com', { subject: { CN: 'db.example.com' }, subjectaltname: 'DNS:db.example.com' } as any) instanceof Error, 'the server name is checked, not the host');
  const ca = tlsFor(parse({ ...base, sslmode: 'verify-ca' }));
  assert.ok(ca && ca.rejectUnauthorized === true && ca.checkServerIdentity!('x', {} as any) === undefined);
  const req = tlsFor(parse({ ...base, sslmode: 'require' }));
  assert.ok(req && req.rejectUnauthorized === false);
  assert.throws(() => tlsFor(parse({ ...base, sslmode: 'disable' })), /allowPlaintext/);
  assert.equal(tlsFor(parse({ ...base, sslmode: 'disable' }), { allowPlaintext: true }), false);
  assert.throws(() => tlsFor(parse({ ...base, sslrootcertpem: 'not a pem' })), /no PEM certificate/);
  assert.ok(isAuthFailure({ code: '28P01' }) && !isAuthFailure({ code: '57P01' }));
});
