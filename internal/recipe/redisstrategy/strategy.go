package redisstrategy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Deps are the clients the strategy uses, built by main.
type Deps struct {
	// ACL reaches the Redis server (required).
	ACL ACL
	// Logger receives the strategy's own log lines; nil: none.
	Logger *slog.Logger
}

// Strategy rotates one Redis ACL user's password per secret.
type Strategy struct {
	cfg  Config
	deps Deps
}

var (
	_ rotation.Strategy = (*Strategy)(nil)
	_ rotation.Finisher = (*Strategy)(nil)
)

// New checks cfg and returns the strategy.
func New(cfg Config, deps Deps) (*Strategy, error) {
	if cfg.AdminSecretARN == "" {
		return nil, rotation.NewError(rotation.ClassConfiguration, EnvAdminSecretARN, EnvAdminSecretARN+" is required", nil)
	}
	if cfg.PasswordLength < 16 || cfg.PasswordLength > 128 {
		return nil, rotation.NewError(rotation.ClassConfiguration, EnvPasswordLength, EnvPasswordLength+" must be 16–128", nil)
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if deps.ACL == nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "redis", "no Redis ACL client", nil)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Strategy{cfg: cfg, deps: deps}, nil
}

// Kind implements rotation.Strategy.
func (s *Strategy) Kind() string { return "redis" }

// secret is the rotated secret's value; fields it does not know are kept.
type secret struct {
	fields   map[string]json.RawMessage
	Username string
	Password string
}

func parse(v *rotation.Version, what string) (*secret, error) {
	if v == nil {
		return nil, rotation.NewError(rotation.ClassState, "parse", "the "+what+" version is missing", nil)
	}
	s := &secret{}
	if err := json.Unmarshal(v.Value.Bytes(), &s.fields); err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "parse", "the "+what+" value is not a JSON object", nil)
	}
	_ = json.Unmarshal(s.fields["username"], &s.Username)
	_ = json.Unmarshal(s.fields["password"], &s.Password)
	if s.Username == "" || s.Password == "" {
		return nil, rotation.NewError(rotation.ClassInput, "parse", "the "+what+" value needs string fields username and password", nil)
	}
	return s, nil
}

func (s *secret) with(password string) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(s.fields))
	for k, v := range s.fields {
		out[k] = v
	}
	pw, err := json.Marshal(password)
	if err != nil {
		return nil, err
	}
	out["password"] = pw
	return json.Marshal(out)
}

// newPassword returns n characters of crypto/rand's base32 text (5 bits
// each), which needs no escaping in a Redis command or a URL.
func newPassword(n int) string {
	var b []byte
	for len(b) < n {
		b = append(b, rand.Text()...)
	}
	return string(b[:n])
}

// Create implements rotation.Strategy: the current value with a new password.
func (s *Strategy) Create(_ context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	cur, err := parse(req.Current, "AWSCURRENT")
	if err != nil {
		return nil, err
	}
	pw := newPassword(s.cfg.PasswordLength)
	req.Redact.Add(pw)
	v, err := cur.with(pw)
	if err != nil {
		return nil, err
	}
	return &rotation.CreateResponse{Value: v}, nil
}

// admin reads the admin user's credentials from its secret.
func (s *Strategy) admin(ctx context.Context, store rotation.Store) (user, password string, err error) {
	v, err := store.GetSecret(ctx, s.cfg.AdminSecretARN, "", "")
	if err != nil {
		return "", "", err
	}
	if v == nil {
		return "", "", rotation.NewError(rotation.ClassConfiguration, "read admin secret", "the admin secret "+s.cfg.AdminSecretARN+" has no AWSCURRENT value", nil)
	}
	a, err := parse(v, "admin secret's")
	if err != nil {
		return "", "", err
	}
	return a.Username, a.Password, nil
}

// call runs one ACL command through rotation.Call, bounded by the command
// timeout, and classifies a refusal.
func (s *Strategy) call(ctx context.Context, op string, fn func(context.Context) error) error {
	return rotation.Call(ctx, op, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.CommandTimeout)
		defer cancel()
		err := fn(ctx)
		if errors.Is(err, ErrAuth) {
			return rotation.NewError(rotation.ClassAuthentication, op, "Redis refused the user and password", nil)
		}
		return err
	})
}

// Set implements rotation.Strategy: add the pending password to the user. It
// succeeds again when the user already has it.
func (s *Strategy) Set(ctx context.Context, req *rotation.SetRequest) (*rotation.SetResponse, error) {
	pend, err := parse(req.Pending, "AWSPENDING")
	if err != nil {
		return nil, err
	}
	au, ap, err := s.admin(ctx, req.Store)
	if err != nil {
		return nil, err
	}
	return nil, s.call(ctx, "redis:acl-add", func(ctx context.Context) error {
		return s.deps.ACL.AddPassword(ctx, au, ap, pend.Username, pend.Password)
	})
}

// Test implements rotation.Strategy: authenticate with the pending password
// (in a configuration test, with the current one).
func (s *Strategy) Test(ctx context.Context, req *rotation.TestRequest) (*rotation.TestResponse, error) {
	pend, err := parse(req.Pending, "AWSPENDING")
	if err != nil {
		return nil, err
	}
	return nil, s.call(ctx, "redis:auth", func(ctx context.Context) error {
		return s.deps.ACL.Auth(ctx, pend.Username, pend.Password)
	})
}

// AfterFinish implements rotation.Finisher: remove the user's passwords that
// belong to stored versions no staging label points at. The version just
// promoted, the previous one, and any version a newer rotation labelled
// meanwhile keep theirs, so a late or repeated hook never removes a password
// in use; a password the user no longer has is not removed again. It costs
// what Store.Versions costs (one ListSecretVersionIds, and a GetSecretValue
// per listed version not yet cached), one ACL GETUSER, and one ACL command
// per password removed — in a steady state, the one of the version that just
// lost AWSPREVIOUS.
func (s *Strategy) AfterFinish(ctx context.Context, req *rotation.FinishRequest) (*rotation.FinishResponse, error) {
	cur, err := parse(req.Current, "AWSCURRENT")
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{cur.Password: true}
	if p, err := parse(req.Previous, "AWSPREVIOUS"); err == nil {
		keep[p.Password] = true
	}
	versions, err := req.Store.Versions(ctx, 0)
	if err != nil {
		return nil, err
	}
	var candidates []string
	for _, v := range versions {
		old, err := parse(v, "stored")
		if err != nil || old.Username != cur.Username {
			continue
		}
		if len(v.Stages) > 0 {
			keep[old.Password] = true
		} else {
			candidates = append(candidates, old.Password)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	au, ap, err := s.admin(ctx, req.Store)
	if err != nil {
		return nil, err
	}
	var hashes []string
	if err := s.call(ctx, "redis:acl-getuser", func(ctx context.Context) (err error) {
		hashes, err = s.deps.ACL.PasswordHashes(ctx, au, ap, cur.Username)
		return err
	}); err != nil {
		return nil, err
	}
	has := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		has[h] = true
	}
	for _, pw := range candidates {
		if keep[pw] || !has[PasswordHash(pw)] {
			continue
		}
		if err := s.call(ctx, "redis:acl-remove", func(ctx context.Context) error {
			return s.deps.ACL.RemovePassword(ctx, au, ap, cur.Username, pw)
		}); err != nil {
			return nil, err
		}
		keep[pw] = true // removed: a duplicate entry needs no second call
	}
	return nil, nil
}
