package pgstrategy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Mode names, in logs, notifications and the docs.
const (
	ModeSingle = "single-user"
	ModeClone  = "alternating-clone"
	ModePair   = "alternating-pair"
)

// Strategy rotates PostgreSQL credentials. It implements rotation.Strategy
// and rotation.Finisher. It is safe for concurrent use.
type Strategy struct {
	cfg    Config
	log    *slog.Logger
	db     DB
	admins adminCache

	rootsOnce sync.Once
	baseRoots *x509.CertPool
}

var (
	_ rotation.Strategy = (*Strategy)(nil)
	_ rotation.Finisher = (*Strategy)(nil)
)

// New returns the strategy for cfg (from ConfigFromEnv), talking to
// PostgreSQL through pgx (NewPGX). log may be nil.
func New(cfg Config, log *slog.Logger) *Strategy { return NewWithDB(cfg, log, NewPGX()) }

// NewWithDB returns the strategy for cfg acting on the database through db
// (see DB). log may be nil.
func NewWithDB(cfg Config, log *slog.Logger, db DB) *Strategy {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Strategy{cfg: cfg, log: log, db: db}
}

// Close ends any admin session kept between steps.
func (s *Strategy) Close() { s.admins.Close() }

// Kind implements rotation.Strategy.
func (s *Strategy) Kind() string { return "postgres" }

// modeOf names the secret's rotation mode.
func modeOf(sec *Secret) string {
	switch {
	case !sec.Alternating():
		return ModeSingle
	case sec.UserPair != nil:
		return ModePair
	default:
		return ModeClone
	}
}

// otherRole is the role of the alternating pair that is not sec.Username.
func otherRole(sec *Secret) (string, error) {
	if sec.UserPair != nil {
		if sec.Username == sec.UserPair[0] {
			return sec.UserPair[1], nil
		}
		return sec.UserPair[0], nil
	}
	if base, ok := strings.CutSuffix(sec.Username, cloneSuffix); ok {
		if err := ValidateRoleName("original role", base); err != nil {
			return "", inputErr("alternating users", "username %s ends in %s but the rest is not a role name: %v", sec.Username, cloneSuffix, err)
		}
		return base, nil
	}
	clone := sec.Username + cloneSuffix
	if len(clone) > maxIdentLen {
		return "", inputErr("alternating users", "username %s is too long to add %q (PostgreSQL names have at most %d bytes); name a pre-created pair with %q instead", sec.Username, cloneSuffix, maxIdentLen, FieldUserPair)
	}
	return clone, nil
}

// Create implements rotation.Strategy: a new password from crypto/rand and,
// with alternating users, the other role of the pair. Nothing is changed in
// the database.
func (s *Strategy) Create(_ context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	cur, err := ParseSecret("the AWSCURRENT secret value", req.Current.Value)
	if err != nil {
		return nil, err
	}
	// Refuse bad TLS settings now, before a pending value exists.
	ep, err := s.endpointFor(cur)
	if err != nil {
		return nil, err
	}
	pw, err := s.cfg.Password.Generate()
	if err != nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "generate password", "the password policy cannot be met", err)
	}
	req.Redact.Add(pw)
	user := cur.Username
	if cur.Alternating() {
		if user, err = otherRole(cur); err != nil {
			return nil, err
		}
	}
	val, err := cur.WithCredentials(user, pw)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "build secret", "the new secret value could not be encoded", err)
	}
	resp := &rotation.CreateResponse{Value: val}
	resp.Details = map[string]string{"mode": modeOf(cur), "pendingUser": user}
	if ep.warning != "" {
		resp.Warnings = append(resp.Warnings, ep.warning)
	}
	return resp, nil
}

// pair parses the current and pending values of a rotation and checks that
// the pending one was derived from the current one.
func (s *Strategy) pair(cur, pend *rotation.Version) (*Secret, *Secret, error) {
	c, err := ParseSecret("the AWSCURRENT secret value", cur.Value)
	if err != nil {
		return nil, nil, err
	}
	p, err := ParseSecret("the AWSPENDING secret value", pend.Value)
	if err != nil {
		return nil, nil, err
	}
	if !sameTarget(c, p) || c.SSLMode != p.SSLMode || c.SSLServerName != p.SSLServerName || c.MasterARN != p.MasterARN {
		return nil, nil, rotation.NewError(rotation.ClassState, "compare versions",
			"the AWSPENDING value addresses another database, TLS setting or admin secret than AWSCURRENT; it was not made by this function: cancel the rotation (remove AWSPENDING) and rotate again", nil)
	}
	if !c.Alternating() {
		if p.Username != c.Username {
			return nil, nil, rotation.NewError(rotation.ClassState, "compare versions", "single-user rotation but AWSPENDING names another user than AWSCURRENT", nil)
		}
		return c, p, nil
	}
	want, err := otherRole(c)
	if err != nil {
		return nil, nil, err
	}
	if p.Username != want {
		return nil, nil, rotation.NewError(rotation.ClassState, "compare versions",
			fmt.Sprintf("alternating rotation: AWSPENDING names user %s, but the role that is not current is %s", p.Username, want), nil)
	}
	return c, p, nil
}

// Set implements rotation.Strategy.
func (s *Strategy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	cur, pend, err := s.pair(req.Current, req.Pending)
	if err != nil {
		return nil, err
	}
	ep, err := s.endpointFor(cur)
	if err != nil {
		return nil, err
	}
	resp := &rotation.SetResponse{}
	if ep.warning != "" {
		resp.Warnings = append(resp.Warnings, ep.warning)
	}
	resp.Details = map[string]string{"mode": modeOf(cur)}
	if cur.Alternating() {
		err = s.setAlternating(ctx, req, ep, cur, pend, resp)
	} else {
		err = s.setSingle(ctx, req, ep, cur, pend, resp)
	}
	if err != nil {
		return resp, err
	}
	return resp, nil
}

// setSingle: the user changes its own password. It logs in with AWSCURRENT;
// if the database refuses that password it tries AWSPENDING (a retried
// setSecret: already done) and then every other stored version of the
// secret that still has a value, newest first (see findLive): the database
// may be at AWSPREVIOUS's password, or at the password of a failed rotation
// whose AWSPENDING an operator removed, which no label points at any more.
func (s *Strategy) setSingle(ctx context.Context, req *rotation.SetRequest, ep endpoint, cur, pend *Secret, resp *rotation.SetResponse) error {
	who := "the AWSCURRENT user " + cur.Username
	conn, err := s.connect(ctx, ep, cur.Username, cur.Password, false, who)
	if err != nil && isAuthFailure(err) {
		pc, perr := s.connect(ctx, ep, pend.Username, pend.Password, false, "the AWSPENDING user "+pend.Username)
		if perr == nil {
			closeConn(pc)
			resp.Details["recovered"] = "the database already has the AWSPENDING password"
			s.log.InfoContext(ctx, "setSecret: the database already has the pending password", "user", pend.Username)
			return nil
		}
		if !isAuthFailure(perr) {
			return perr
		}
		tried := []string{"AWSCURRENT (" + req.Current.ID + ")", "AWSPENDING (" + req.Pending.ID + ")"}
		live, err := s.findLive(ctx, req.Store, ep, cur, []string{cur.Username}, map[string]bool{cur.Password: true, pend.Password: true}, tried, err)
		if err != nil {
			return err
		}
		resp.Details["recovered"] = live.what
		resp.Details["recoveredFrom"] = live.version.ID
		s.log.InfoContext(ctx, "setSecret: "+live.what, "user", cur.Username, "versionId", live.version.ID)
		conn = live.conn
	} else if err != nil {
		return err
	}
	defer closeConn(conn)
	v, err := s.verifierFor(pend.Username, pend.Password, false)
	if err != nil {
		return err
	}
	if err := dbCall(ctx, "postgres:exec", func(ctx context.Context) error { return conn.SetPassword(ctx, pend.Username, v, false) }); err != nil {
		return classifyExec(err, "changing the password of "+pend.Username, "itself")
	}
	return nil
}

// liveVersion is a stored version whose credentials the database accepts.
type liveVersion struct {
	conn    Session
	version *rotation.Version
	sec     *Secret
	what    string // for the log and the step's details
}

// findLive looks for the stored version of the rotated secret whose
// credentials the database still accepts: the versions with a value
// (Store.Versions, newest first, at most rotation.DefaultVersionLimit),
// skipping those for another server, for a user not in users, or with a
// password in skip (already tried). tried names what was tried before, for
// the error, refused the first refusal (kept as the error's cause). The
// first that logs in wins; a failure other than a refused
// password (the server is down) ends the search with that error. When no
// stored password is accepted the error lists every version tried, by id
// (never a value): the password was then changed outside rotation, or by a
// version Secrets Manager no longer keeps.
func (s *Strategy) findLive(ctx context.Context, st rotation.Store, ep endpoint, cur *Secret, users []string, skip map[string]bool, tried []string, refused error) (*liveVersion, error) {
	vs, err := st.Versions(ctx, rotation.DefaultVersionLimit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, v := range vs {
		sec, perr := ParseSecret("a stored version of the secret", v.Value)
		if perr != nil || !sameTarget(sec, cur) || !slices.Contains(users, sec.Username) || skip[sec.Password] {
			continue
		}
		skip[sec.Password] = true
		label := "version " + v.ID
		if len(v.Stages) > 0 {
			label += " (" + strings.Join(v.Stages, ",") + ")"
		}
		ids = append(ids, v.ID)
		conn, cerr := s.connect(ctx, ep, sec.Username, sec.Password, false, "the user "+sec.Username+" of "+label)
		if cerr == nil {
			what := "the database was at the password of " + label + ", which no label points at any more"
			if slices.Contains(v.Stages, rotation.StagePrevious) {
				what = "the database was still at the AWSPREVIOUS password (" + label + ")"
			} else if len(v.Stages) > 0 {
				what = "the database was at the password of " + label
			}
			return &liveVersion{conn: conn, version: v, sec: sec, what: what}, nil
		}
		if !isAuthFailure(cerr) {
			return nil, cerr
		}
	}
	all := tried
	if len(ids) > 0 {
		all = append(all, "the stored versions "+strings.Join(ids, ", "))
	}
	return nil, rotation.NewError(rotation.ClassAuthentication, "postgres:connect",
		fmt.Sprintf("the database at %s refuses the password of user %s in every stored version of the secret tried (%s; the %d newest versions with a value are tried): the password was changed outside rotation, or by a version Secrets Manager no longer keeps; set the role's password to the AWSCURRENT value (or store the database's password as AWSCURRENT) and rotate again",
			ep, strings.Join(users, " or "), strings.Join(all, "; "), rotation.DefaultVersionLimit), refused)
}

// verifierFor hashes password for role and checks that the statement
// setting it can be built (valid role name, verifier shape).
func (s *Strategy) verifierFor(role, password string, validInfinity bool) (string, error) {
	v, err := ScramVerifier(password)
	if err != nil {
		return "", rotation.NewError(rotation.ClassInput, "scram verifier", "the password cannot be hashed: "+err.Error(), nil)
	}
	if _, err := alterPasswordSQL(role, v, validInfinity); err != nil {
		return "", rotation.NewError(rotation.ClassInput, "build statement", err.Error(), nil)
	}
	return v, nil
}

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
	if adm.Port != 0 && adm.port() != app.port() {
		return nil, rotation.NewError(rotation.ClassConfiguration, "master host check",
			fmt.Sprintf("refusing to use the admin secret: it is for port %d but the rotated secret's port is %d", adm.port(), app.port()), nil)
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

// checkTakeover guards against a secret being used to take over another
// role: whoever can write the secret (and knows the current password) must
// not get the function to set a password on a role that is more powerful
// than the current one. The pending role may not have an attribute
// (SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS) the current
// role lacks, nor be a member of a role the current role is not a member
// of. In clone mode the clone must be a member of the original (then going
// back to the original is always allowed: the clone already inherits its
// rights). It reports whether the pending role exists.
func checkTakeover(ctx context.Context, conn Session, cur, pend *Secret, who string) (bool, error) {
	var f TakeoverFacts
	err := dbCall(ctx, "postgres:query", func(ctx context.Context) error {
		var err error
		f, err = conn.Takeover(ctx, pend.Username, cur.Username)
		return err
	})
	if err != nil {
		return false, classifyExec(err, "checking the roles of the pair", who)
	}
	if !f.Found {
		return false, nil
	}
	attrs, roles, related := f.ExtraAttrs, f.ExtraRoles, f.Related
	refuse := func(why string) (bool, error) {
		return true, rotation.NewError(rotation.ClassConfiguration, "alternating users",
			fmt.Sprintf("refusing to set a password on %s: %s; a secret may only switch between two equally privileged login roles (grant the same to both, or fix the secret)", pend.Username, why), nil)
	}
	if pend.UserPair == nil {
		if !related {
			return refuse(fmt.Sprintf("in clone mode the clone must be a member of the original role, and %s and %s are not related", pend.Username, cur.Username))
		}
		if !strings.HasSuffix(pend.Username, cloneSuffix) {
			return true, nil // back to the original, whose member the current clone is
		}
	}
	if attrs != "" {
		return refuse(fmt.Sprintf("it has %s, which %s lacks", attrs, cur.Username))
	}
	if roles != "" {
		return refuse(fmt.Sprintf("it is a member of %s, which %s is not", roles, cur.Username))
	}
	return true, nil
}

// Test implements rotation.Strategy: log in with the pending credentials,
// and with alternating users run the preflight that warns about ownership
// and differing memberships or settings.
func (s *Strategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	var cur, pend *Secret
	var err error
	if req.ConfigTest {
		if cur, err = ParseSecret("the AWSCURRENT secret value", req.Current.Value); err != nil {
			return nil, err
		}
		pend = cur
	} else if cur, pend, err = s.pair(req.Current, req.Pending); err != nil {
		return nil, err
	}
	ep, err := s.endpointFor(pend)
	if err != nil {
		return nil, err
	}
	resp := &rotation.TestResponse{}
	resp.Details = map[string]string{"mode": modeOf(cur)}
	if ep.warning != "" {
		resp.Warnings = append(resp.Warnings, ep.warning)
	}
	label := "AWSPENDING"
	if req.ConfigTest {
		label = "AWSCURRENT"
	}
	conn, err := s.connect(ctx, ep, pend.Username, pend.Password, false, "the "+label+" user "+pend.Username)
	if err != nil {
		return resp, err
	}
	defer closeConn(conn)
	if !cur.Alternating() {
		return resp, nil
	}
	other, err := otherRole(pend)
	if err != nil {
		return resp, err
	}
	warns, err := preflight(ctx, conn, pend, other)
	if err != nil {
		return resp, err
	}
	for _, w := range warns {
		s.log.WarnContext(ctx, "alternating users preflight", "warning", w)
	}
	resp.Warnings = append(resp.Warnings, warns...)
	if req.ConfigTest {
		// Prove the admin side of the configuration too.
		adm, err := s.loadAdmin(ctx, req.Store, cur, ep)
		if err != nil {
			return resp, err
		}
		ac, err := s.adminConnect(ctx, adm)
		if err != nil {
			return resp, err
		}
		closeConn(ac)
	}
	return resp, nil
}

// preflight compares the two login roles of an alternating pair. In clone
// mode the original role owning objects is the expected layout (the clone
// reaches them through its membership), and that membership is left out of
// the comparison; objects owned by the clone are not reachable by the
// original, so they are reported. In pair mode neither login role should
// own anything: a NOLOGIN owner role that both are members of should.
func preflight(ctx context.Context, conn Session, pend *Secret, other string) ([]string, error) {
	var facts map[string]RoleFacts
	err := dbCall(ctx, "postgres:query", func(ctx context.Context) error {
		var err error
		facts, err = conn.Roles(ctx, []string{pend.Username, other})
		return err
	})
	if err != nil {
		return nil, classifyExec(err, "the alternating-users preflight query", "the AWSPENDING user "+pend.Username)
	}
	var warns []string
	pf := facts[pend.Username]
	of, ok := facts[other]
	if !ok {
		warns = append(warns, fmt.Sprintf("the other role of the pair, %s, does not exist", other))
		return warns, nil
	}
	clone, original := "", ""
	if pend.UserPair == nil {
		if strings.HasSuffix(pend.Username, cloneSuffix) {
			clone, original = pend.Username, other
		} else {
			clone, original = other, pend.Username
		}
	}
	for _, r := range []string{pend.Username, other} {
		f := facts[r]
		if f.Owned == 0 || r == original {
			continue
		}
		warns = append(warns, fmt.Sprintf("login role %s owns %d database objects (tables, sequences, views, functions, schemas) here; objects it creates are not usable by the other role of the pair unless granted. Make a NOLOGIN role that both are members of own them (ALTER … OWNER TO, and SET ROLE in migrations)", r, f.Owned))
	}
	pm, om := slices.Clone(pf.MemberOf), slices.Clone(of.MemberOf)
	if clone != "" {
		cm := &pm
		if other == clone {
			cm = &om
		}
		*cm = slices.DeleteFunc(*cm, func(s string) bool { return s == original })
	}
	if !slices.Equal(pm, om) {
		warns = append(warns, fmt.Sprintf("the role memberships of %s [%s] and %s [%s] differ; the application's privileges change with every rotation", pend.Username, strings.Join(pm, ","), other, strings.Join(om, ",")))
	}
	if !slices.Equal(pf.Config, of.Config) {
		warns = append(warns, fmt.Sprintf("the role settings (ALTER ROLE … SET) of %s and %s differ", pend.Username, other))
	}
	if pf.Attrs != of.Attrs {
		warns = append(warns, fmt.Sprintf("the role attributes of %s (%s) and %s (%s) differ", pend.Username, pf.Attrs, other, of.Attrs))
	}
	return warns, nil
}

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
