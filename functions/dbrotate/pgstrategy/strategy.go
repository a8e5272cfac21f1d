package pgstrategy

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"

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
	roots     *x509.CertPool // baseRoots, built once
}

var (
	_ rotation.Strategy = (*Strategy)(nil)
	_ rotation.Finisher = (*Strategy)(nil)
)

// Deps are the clients and services the strategy uses, built by main. The
// zero value is usable: no log output, PostgreSQL through pgx.
type Deps struct {
	// Logger receives the strategy's log lines; nil discards them.
	Logger *slog.Logger
	// DB is how the strategy acts on the database; nil is pgx (NewPGX). A
	// test of the rotation state machine may plug in an in-memory target.
	DB DB
}

// New checks cfg (the checks ConfigFromEnv made, for a Config built
// directly) and returns the strategy. The returned error is of class
// configuration.
func New(cfg Config, deps Deps) (*Strategy, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.DB == nil {
		deps.DB = NewPGX()
	}
	return &Strategy{cfg: cfg, log: deps.Logger, db: deps.DB}, nil
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
