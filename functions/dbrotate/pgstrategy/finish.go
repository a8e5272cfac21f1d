package pgstrategy

import (
	"context"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// AfterFinish implements rotation.Finisher: with alternating users the
// outgoing role gets VALID UNTIL now + OUTGOING_USER_GRACE (now: the hook's
// run, right after the promotion), unless it no longer accepts the
// AWSPREVIOUS password (a later rotation took it over), so PostgreSQL
// itself refuses new logins with it after the grace period. The check and
// the expiry run under the role's advisory lock on the admin session, the
// lock every setSecret takes before it gives a role a new password. The next
// rotation sets it back to 'infinity' when that role becomes the pending
// one. It reuses the admin session setSecret kept, when there is one.
func (s *Strategy) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	cur, err := ParseSecret("the new AWSCURRENT secret value", req.Current.Value)
	if err != nil {
		return nil, err
	}
	if !cur.Alternating() {
		return nil, nil
	}
	resp := &rotation.FinishResponse{}
	prev, err := ParseSecret("the AWSPREVIOUS secret value", req.Previous.Value)
	if err != nil {
		return resp, err
	}
	if prev.Username == cur.Username || !sameTarget(prev, cur) {
		return resp, nil
	}
	key := adminKey{arn: req.Secret.ARN, token: req.Token}
	conn, adm := s.admins.take(key, req.Now)
	reused := conn != nil
	if s.cfg.OutgoingGrace == 0 {
		closeConn(conn)
		resp.Details = map[string]string{"outgoingUser": prev.Username, "outgoingExpiry": "disabled"}
		return resp, nil
	}
	if !reused {
		// Another execution environment ran setSecret: read and check the
		// admin secret again (the confused-deputy check ran in setSecret
		// on these same, immutable, versions).
		ep, err := s.endpointFor(cur)
		if err != nil {
			return resp, err
		}
		if adm, err = s.loadAdmin(ctx, req.Store, cur, ep); err != nil {
			return resp, err
		}
	}
	if prev.Username == adm.sec.Username {
		closeConn(conn)
		return resp, rotation.NewError(rotation.ClassConfiguration, "expire outgoing role", "the outgoing role is the admin user; not expiring it", nil)
	}
	// A hook can run late (its environment stalled after the promotion, or
	// a retried finishSecret), after a later rotation made the outgoing
	// role current again. That rotation first gave the role a new password,
	// so the role still accepting the AWSPREVIOUS password proves it is
	// still the outgoing one; otherwise expiring it would lock out
	// AWSCURRENT. (One more login, never a failed one on the happy path.)
	// The admin session holds the role's lock (LockRole) from before that
	// login until the expiry is committed, and every setSecret changes a
	// password under the same lock, so no rotation can take the role over
	// between the check and the ALTER.
	ep, err := s.endpointFor(prev)
	if err != nil {
		closeConn(conn)
		return resp, err
	}
	until := req.Now.Add(s.cfg.OutgoingGrace)
	if _, err := expireSQL(prev.Username, until); err != nil {
		closeConn(conn)
		return resp, rotation.NewError(rotation.ClassInput, "build statement", err.Error(), nil)
	}
	admWho := "the admin user " + adm.sec.Username
	if !reused {
		if conn, err = s.adminConnect(ctx, adm); err != nil {
			return resp, err
		}
	}
	lock := func(ctx context.Context) error { return conn.LockRole(ctx, prev.Username) }
	err = dbCall(ctx, "postgres:exec", lock)
	if err != nil && reused && isDeadConn(conn, err) {
		closeConn(conn)
		if conn, err = s.adminConnect(ctx, adm); err != nil {
			return resp, err
		}
		err = dbCall(ctx, "postgres:exec", lock)
	}
	defer func() { closeConn(conn) }() // before Unlock: rolls back, releasing the lock
	if err != nil {
		return resp, classifyExec(err, "locking the outgoing role "+prev.Username+" against a concurrent change", admWho)
	}
	oc, err := s.connect(ctx, ep, prev.Username, prev.Password, false, "the outgoing AWSPREVIOUS user "+prev.Username)
	if err != nil {
		if isAuthFailure(err) {
			resp.Details = map[string]string{"outgoingUser": prev.Username, "outgoingExpiry": "skipped: the role no longer accepts the AWSPREVIOUS password (a later rotation took it over, or it has expired already)"}
			s.log.WarnContext(ctx, "finishSecret: not expiring the outgoing role: it no longer has the AWSPREVIOUS password", "role", prev.Username)
			return resp, nil
		}
		return resp, err
	}
	closeConn(oc)
	err = dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.SetValidUntil(ctx, prev.Username, until) })
	if err == nil {
		err = dbCall(ctx, "postgres:exec", conn.Unlock)
	}
	if err != nil {
		return resp, classifyExec(err, "expiring the outgoing role "+prev.Username, admWho)
	}
	resp.Details = map[string]string{"outgoingUser": prev.Username, "outgoingValidUntil": until.UTC().Format(time.RFC3339)}
	return resp, nil
}
