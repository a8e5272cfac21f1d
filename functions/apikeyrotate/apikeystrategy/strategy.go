package apikeystrategy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rotation-suite/rotation/internal/envconf"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Strategy rotates API keys and webhook signing keys. It implements
// rotation.Strategy and rotation.Finisher.
type Strategy struct {
	cfg  Config
	http *http.Client // nil when neither URL is configured
}

// Deps are the clients the strategy uses, built by main. The zero value is
// usable.
type Deps struct {
	// HTTPClient makes the registration and test calls. Nil: a client that
	// requires TLS 1.2 or later and trusts the system roots plus
	// Config.CAPEM. Either way the strategy follows no redirect (a redirect
	// could carry a key or a registration elsewhere): New uses a copy of the
	// client whose redirect policy refuses them.
	HTTPClient *http.Client
	// Logger is not used by the strategy: it reports through its step
	// responses (warnings and details), which the engine logs and notifies.
	// It is here so every function's main wires its strategy the same way.
	Logger *slog.Logger
}

// New checks cfg as ConfigFromEnv does (a Config built by a test gets the
// same checks; its Warnings are neither computed nor changed) and returns
// the strategy. A bad setting is one rotation.ClassConfiguration error
// listing every problem.
func New(cfg Config, deps Deps) (*Strategy, error) {
	r := envconf.New(func(string) string { return "" })
	cfg.check(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	s := &Strategy{cfg: cfg}
	if cfg.RegisterURL != "" || cfg.TestURL != "" {
		client := deps.HTTPClient
		if client == nil {
			var err error
			if client, err = newHTTPClient(cfg.CAPEM); err != nil {
				return nil, err
			}
		}
		c := *client
		c.CheckRedirect = refuseRedirect
		s.http = &c
	}
	return s, nil
}

var (
	_ rotation.Strategy = (*Strategy)(nil)
	_ rotation.Finisher = (*Strategy)(nil)
)

// Kind is the configured kind, or "apikey" when the kind comes from the secret.
func (s *Strategy) Kind() string {
	if s.cfg.Kind != "" {
		return s.cfg.Kind
	}
	return apikey.KindAPIKey
}

func (s *Strategy) kind(c *apikey.CallerSecret) (string, error) {
	if s.cfg.Kind != "" && s.cfg.Kind != c.Kind {
		return "", rotation.NewError(rotation.ClassConfiguration, "APIKEY_KIND", "APIKEY_KIND is "+s.cfg.Kind+" but the secret is of kind "+c.Kind+"; fix one of them", nil)
	}
	return c.Kind, nil
}

func (s *Strategy) prefix(kind string) string {
	switch {
	case s.cfg.Prefix != "":
		return s.cfg.Prefix
	case kind == apikey.KindWebhook:
		return DefaultWebhookPrefix
	}
	return DefaultAPIKeyPrefix
}

// pair parses the pending (must hold a key) and current caller secrets.
func (s *Strategy) pair(pv, cv *rotation.Version) (pend, cur *apikey.CallerSecret, err error) {
	if pend, err = parseCaller(pv, "AWSPENDING"); err != nil {
		return nil, nil, err
	}
	if cur, err = parseCaller(cv, "AWSCURRENT"); err != nil {
		return nil, nil, err
	}
	if !pend.Issued() {
		return nil, nil, rotation.NewError(rotation.ClassInput, "caller secret", "the pending caller secret holds no key", nil)
	}
	if _, err := s.kind(pend); err != nil {
		return nil, nil, err
	}
	if cur.Kind != pend.Kind {
		return nil, nil, rotation.NewError(rotation.ClassInput, "caller secret", "the pending and current caller secrets are of different kinds", nil)
	}
	return pend, cur, nil
}

// pepper returns the hash algorithm for new API-key records and the pepper.
func (s *Strategy) pepper(ctx context.Context, st rotation.Store, kind string) (string, []byte, error) {
	if kind == apikey.KindWebhook {
		if s.cfg.PepperSecretID != "" {
			return "", nil, configErr(EnvPepperSecretARN, pepperForWebhook, nil)
		}
		return "", nil, nil
	}
	if s.cfg.PepperSecretID == "" {
		return apikey.AlgSHA256, nil, nil
	}
	v, err := st.GetSecret(ctx, s.cfg.PepperSecretID, "", rotation.StageCurrent)
	if err != nil {
		return "", nil, err
	}
	if v == nil || len(v.Value) < apikey.MinPepperLen {
		return "", nil, configErr(EnvPepperSecretARN, fmt.Sprintf("must name a secret whose value has at least %d bytes", apikey.MinPepperLen), nil)
	}
	return apikey.AlgHMACSHA256, v.Value.Bytes(), nil
}

func parseCaller(v *rotation.Version, stage string) (*apikey.CallerSecret, error) {
	if v == nil {
		return nil, rotation.NewError(rotation.ClassState, "caller secret", "the "+stage+" version is missing", nil)
	}
	c, err := apikey.ParseCaller(v.Value.Bytes())
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "caller secret", "the "+stage+" caller secret is not valid: "+err.Error(), nil)
	}
	return c, nil
}

func parseVerifier(b []byte) (*apikey.VerifierDoc, error) {
	d, err := apikey.ParseVerifier(b)
	if err != nil {
		return nil, rotation.NewError(rotation.ClassInput, "verifier secret", "the verifier secret is not valid: "+err.Error(), nil)
	}
	return d, nil
}

func configErr(name, msg string, cause error) error {
	return rotation.NewError(rotation.ClassConfiguration, name, name+" "+msg, cause)
}
