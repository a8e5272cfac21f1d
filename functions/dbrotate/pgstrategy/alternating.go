package pgstrategy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// admin is a loaded and checked admin secret.
type admin struct {
	sec *Secret
	ep  endpoint
}

// loadAdmin reads the admin secret named by masterarn and checks that it is
// for the rotated secret's server: a host (and port) in the admin secret
// must equal the application secret's; an admin secret without a host (the
// RDS-managed shape) is used against the application secret's host, with
// SCRAM-only authentication (see requireAuthAdmin).
func (s *Strategy) loadAdmin(ctx context.Context, st rotation.Store, app *Secret, appEP endpoint) (*admin, error) {
	v, err := st.GetSecret(ctx, app.MasterARN, "", rotation.StageCurrent)
	if err != nil {
		var re *rotation.Error
		if errors.As(err, &re) {
			return nil, rotation.NewError(re.Class, "read admin secret", "reading the admin secret named by masterarn ("+app.MasterARN+"): "+re.Msg+"; the function's role needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)", re.Cause)
		}
		return nil, rotation.NewError(rotation.ClassDependency, "read admin secret", "reading the admin secret named by masterarn ("+app.MasterARN+") failed", err)
	}
	if v == nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "read admin secret",
			"the admin secret named by masterarn ("+app.MasterARN+") does not exist or has no AWSCURRENT value; fix masterarn in the secret", nil)
	}
	adm, err := ParseAdminSecret(v.Value)
	if err != nil {
		return nil, err
	}
	if adm.Host != "" && !sameHost(adm.Host, app.Host) {
		return nil, rotation.NewError(rotation.ClassConfiguration, "master host check",
			fmt.Sprintf("refusing to use the admin secret: it is for host %s but the rotated secret's host is %s; an admin secret is only used against its own server", adm.Host, app.Host), nil)
	}
	if adm.Port != 0 && adm.PortOrDefault() != app.PortOrDefault() {
		return nil, rotation.NewError(rotation.ClassConfiguration, "master host check",
			fmt.Sprintf("refusing to use the admin secret: it is for port %d but the rotated secret's port is %d", adm.PortOrDefault(), app.PortOrDefault()), nil)
	}
	if adm.Username == app.Username {
		return nil, rotation.NewError(rotation.ClassConfiguration, "master host check", "the admin secret's user is the rotated user itself; use single-user rotation (no masterarn) instead", nil)
	}
	ep := appEP
	if adm.DBName != "" {
		ep.db = adm.DBName
	}
	return &admin{sec: adm, ep: ep}, nil
}

func (s *Strategy) adminConnect(ctx context.Context, adm *admin) (Session, error) {
	return s.connect(ctx, adm.ep, adm.sec.Username, adm.sec.Password, true, "the admin user "+adm.sec.Username)
}

// setAlternating sets a new password on the role that is not current.
func (s *Strategy) setAlternating(ctx context.Context, req *rotation.SetRequest, ep endpoint, cur, pend *Secret, resp *rotation.SetResponse) error {
	adm, err := s.loadAdmin(ctx, req.Store, cur, ep)
	if err != nil {
		return err
	}
	if pend.Username == adm.sec.Username {
		return rotation.NewError(rotation.ClassConfiguration, "alternating users", "the role to receive the new password is the admin user itself; fix the secret's username or "+FieldUserPair, nil)
	}
	// Confused-deputy check: the admin secret is only used for a secret whose
	// current credentials really log in at its host.
	cc, err := s.connect(ctx, ep, cur.Username, cur.Password, false, "the AWSCURRENT user "+cur.Username)
	if err != nil && isAuthFailure(err) {
		// AWSCURRENT is refused (say an operator moved it back to a role
		// whose term was expired): another stored version of this same
		// secret that logs in at this server is the same proof.
		other, oerr := otherRole(cur)
		if oerr != nil {
			return oerr
		}
		live, lerr := s.findLive(ctx, req.Store, ep, cur, []string{cur.Username, other}, map[string]bool{cur.Password: true}, []string{"AWSCURRENT (" + req.Current.ID + ")"}, err)
		if lerr == nil {
			resp.Details["currentRefused"] = "the confused-deputy check used " + live.version.ID + " instead"
			s.log.WarnContext(ctx, "setSecret: AWSCURRENT is refused; proved the secret with another stored version", "versionId", live.version.ID, "user", live.sec.Username)
			cc, err = live.conn, nil
		} else {
			err = lerr
		}
	}
	if err != nil {
		var re *rotation.Error
		if errors.As(err, &re) {
			return rotation.NewError(re.Class, re.Op, "confused-deputy check failed, the admin secret was not used: the AWSCURRENT credentials must log in before the function acts on them; "+re.Msg, re.Cause)
		}
		return err
	}
	closeConn(cc)

	key := adminKey{arn: req.Secret.ARN, token: req.Token}
	if old, _ := s.admins.take(key, req.Now); old != nil {
		closeConn(old) // a retried setSecret: start from a fresh session
	}
	conn, err := s.adminConnect(ctx, adm)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if keep {
			s.admins.put(key, conn, adm, req.Now)
		} else {
			closeConn(conn)
		}
	}()
	who := "the admin user " + adm.sec.Username
	exists, err := checkTakeover(ctx, conn, cur, pend, who)
	if err != nil {
		return err
	}
	// Hold the role's lock from before the password changes until it has
	// taken effect, so that a late after-finish hook expiring this role
	// runs entirely before (this 'infinity' wins) or entirely after (its
	// check login with the old password fails): see AfterFinish.
	lock := func() error {
		if err := dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.LockRole(ctx, pend.Username) }); err != nil {
			return classifyExec(err, "locking the role "+pend.Username+" against a concurrent change", who)
		}
		return nil
	}
	if exists {
		v, serr := s.verifierFor(pend.Username, pend.Password, true)
		if serr != nil {
			return serr
		}
		if err := lock(); err != nil {
			return err
		}
		err = dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.SetPassword(ctx, pend.Username, v, true) })
	} else {
		if pend.UserPair != nil {
			return rotation.NewError(rotation.ClassConfiguration, "alternating users",
				fmt.Sprintf("the role %s does not exist; in pre-created pair mode both roles of %q must exist (this function creates nothing)", pend.Username, FieldUserPair), nil)
		}
		if !strings.HasSuffix(pend.Username, cloneSuffix) {
			return rotation.NewError(rotation.ClassConfiguration, "alternating users",
				fmt.Sprintf("the original role %s of the clone %s does not exist; recreate it (this function only creates the clone)", pend.Username, cur.Username), nil)
		}
		// Clone mode, first rotation: create <user>_clone as a member of the original.
		v, verr := ScramVerifier(pend.Password)
		if verr != nil {
			return rotation.NewError(rotation.ClassInput, "scram verifier", verr.Error(), nil)
		}
		if _, cerr := createCloneSQL(pend.Username, cur.Username, v); cerr != nil {
			return rotation.NewError(rotation.ClassInput, "build statement", cerr.Error(), nil)
		}
		if err := lock(); err != nil {
			return err
		}
		err = dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.CreateClone(ctx, pend.Username, cur.Username, v) })
		if err == nil {
			resp.Details["created"] = pend.Username
			s.log.InfoContext(ctx, "setSecret: created the clone role", "role", pend.Username, "memberOf", cur.Username)
		}
	}
	if err != nil {
		return classifyExec(err, "setting the password of "+pend.Username, who)
	}
	// Commit: the password takes effect and the lock is released, so the
	// session kept for finishSecret holds no lock.
	if err := dbCall(ctx, "postgres:exec", conn.Unlock); err != nil {
		return classifyExec(err, "committing the password of "+pend.Username, who)
	}
	keep = true
	return nil
}
