package pgstrategy

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewPGX returns the production DB: pgx v5 over the wire protocol, one
// connection per Connect, the password set as a configuration field (never
// in a connection string), no fallback from TLS to plaintext, the simple
// protocol for utility statements and no statement caches.
func NewPGX() DB { return pgxDB{} }

type pgxDB struct{}

func (pgxDB) Connect(ctx context.Context, t Target, l Login) (Session, error) {
	requireAuth := requireAuthApp
	if l.Admin {
		requireAuth = requireAuthAdmin
	}
	cfg, err := connConfig(endpoint{host: t.Host, port: t.Port, db: t.Database, tls: t.TLS}, l.User, l.Password, requireAuth)
	if err != nil {
		return nil, err
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if c != nil {
			closePGX(c)
		}
		return nil, err
	}
	return &pgxSession{c: c}, nil
}

type pgxSession struct{ c *pgx.Conn }

// exec runs one utility statement (no parameters) with the simple protocol.
func (s *pgxSession) exec(ctx context.Context, sql string, err error) error {
	if err != nil {
		return err
	}
	_, err = s.c.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

func (s *pgxSession) SetPassword(ctx context.Context, role, verifier string, validInfinity bool) error {
	sql, err := alterPasswordSQL(role, verifier, validInfinity)
	return s.exec(ctx, sql, err)
}

func (s *pgxSession) CreateClone(ctx context.Context, clone, original, verifier string) error {
	sql, err := createCloneSQL(clone, original, verifier)
	return s.exec(ctx, sql, err)
}

func (s *pgxSession) SetValidUntil(ctx context.Context, role string, until time.Time) error {
	sql, err := expireSQL(role, until)
	return s.exec(ctx, sql, err)
}

func (s *pgxSession) Takeover(ctx context.Context, pending, current string) (TakeoverFacts, error) {
	f := TakeoverFacts{Found: true}
	err := s.c.QueryRow(ctx, takeoverSQL, pending, current).Scan(&f.ExtraAttrs, &f.ExtraRoles, &f.Related)
	if errors.Is(err, pgx.ErrNoRows) {
		return TakeoverFacts{}, nil
	}
	return f, err
}

func (s *pgxSession) Roles(ctx context.Context, names []string) (map[string]RoleFacts, error) {
	rows, err := s.c.Query(ctx, preflightSQL, names)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]RoleFacts{}
	for rows.Next() {
		var name string
		var f RoleFacts
		if err := rows.Scan(&name, &f.Owned, &f.MemberOf, &f.Config, &f.Attrs); err != nil {
			return nil, err
		}
		out[name] = f
	}
	return out, rows.Err()
}

// lockWaitMax bounds a LockRole wait when ctx has no deadline, and
// lockWaitMin is the least wait asked for (PostgreSQL's lock_timeout 0
// would mean "wait forever").
const (
	lockWaitMax = 10 * time.Second
	lockWaitMin = 50 * time.Millisecond
)

// lockWait is the lock_timeout for a LockRole under ctx: the time ctx
// leaves, less a margin so that PostgreSQL answers 55P03 before the client
// gives up on the connection, between lockWaitMin and lockWaitMax.
func lockWait(ctx context.Context) time.Duration {
	w := lockWaitMax
	if d, ok := ctx.Deadline(); ok {
		w = min(w, time.Until(d)*3/4)
	}
	return max(w, lockWaitMin)
}

func (s *pgxSession) LockRole(ctx context.Context, role string) error {
	sql, err := lockRoleSQL(role, lockWait(ctx))
	if err != nil {
		return err
	}
	_, err = s.c.PgConn().Exec(ctx, sql).ReadAll()
	if err != nil && !s.c.IsClosed() {
		// The lock was not taken (or the transaction failed): leave no
		// transaction open on the session.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, rerr := s.c.PgConn().Exec(rctx, "ROLLBACK").ReadAll(); rerr != nil {
			closePGX(s.c)
		}
	}
	return err
}

func (s *pgxSession) Unlock(ctx context.Context) error {
	_, err := s.c.PgConn().Exec(ctx, "COMMIT").ReadAll()
	return err
}

func (s *pgxSession) Alive() bool { return !s.c.IsClosed() }

func (s *pgxSession) Close() { closePGX(s.c) }

// closePGX ends a session politely, without waiting long.
func closePGX(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

// takeoverSQL reads what checkTakeover needs in one round trip: whether
// the pending role exists, the attributes it has that the current role
// lacks, the roles it is a member of that the current role is not, and
// whether the clone is a member of the original.
const takeoverSQL = `SELECT
  concat_ws(',', CASE WHEN p.rolsuper AND NOT c.rolsuper THEN 'SUPERUSER' END,
    CASE WHEN p.rolcreaterole AND NOT c.rolcreaterole THEN 'CREATEROLE' END,
    CASE WHEN p.rolcreatedb AND NOT c.rolcreatedb THEN 'CREATEDB' END,
    CASE WHEN p.rolreplication AND NOT c.rolreplication THEN 'REPLICATION' END,
    CASE WHEN p.rolbypassrls AND NOT c.rolbypassrls THEN 'BYPASSRLS' END),
  COALESCE((SELECT string_agg(r.rolname::text, ',' ORDER BY r.rolname) FROM pg_catalog.pg_roles r
    WHERE r.oid <> p.oid AND r.oid <> c.oid AND pg_catalog.pg_has_role(p.oid, r.oid, 'MEMBER')
      AND NOT pg_catalog.pg_has_role(c.oid, r.oid, 'MEMBER')), ''),
  pg_catalog.pg_has_role(p.oid, c.oid, 'MEMBER') OR pg_catalog.pg_has_role(c.oid, p.oid, 'MEMBER')
FROM pg_catalog.pg_roles p, pg_catalog.pg_roles c WHERE p.rolname = $1 AND c.rolname = $2`

const preflightSQL = `SELECT r.rolname,
  (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relowner = r.oid)
  + (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.proowner = r.oid)
  + (SELECT count(*) FROM pg_catalog.pg_namespace n WHERE n.nspowner = r.oid),
  COALESCE((SELECT array_agg(g.rolname::text ORDER BY g.rolname) FROM pg_catalog.pg_auth_members m
            JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid), '{}'::text[]),
  COALESCE(r.rolconfig, '{}'::text[]),
  concat_ws(',', CASE WHEN r.rolsuper THEN 'SUPERUSER' END, CASE WHEN r.rolinherit THEN 'INHERIT' END,
            CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END, CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
            CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN r.rolreplication THEN 'REPLICATION' END,
            'CONNECTION LIMIT ' || r.rolconnlimit)
FROM pg_catalog.pg_roles r WHERE r.rolname = ANY($1)`
