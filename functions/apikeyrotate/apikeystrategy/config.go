package apikeystrategy

import (
	"bytes"
	"crypto/x509"
	"net/url"
	"os"
	"time"

	"github.com/rotation-suite/rotation/internal/envconf"
	"github.com/rotation-suite/rotation/pkg/apikey"
)

// Environment variables the function reads at start-up (docs/apikey.md).
const (
	EnvKind                  = "APIKEY_KIND"
	EnvPrefix                = "APIKEY_PREFIX"
	EnvOverlap               = "APIKEY_OVERLAP"
	EnvMaxAge                = "APIKEY_MAX_AGE"
	EnvVerifierSecretARN     = "APIKEY_VERIFIER_SECRET_ARN"
	EnvPepperSecretARN       = "APIKEY_PEPPER_SECRET_ARN"
	EnvRegisterURL           = "APIKEY_REGISTER_URL"
	EnvRegisterHMACSecretARN = "APIKEY_REGISTER_HMAC_SECRET_ARN"
	EnvTestURL               = "APIKEY_TEST_URL"
	EnvCAFile                = "APIKEY_CA_FILE"
)

// Defaults and bounds.
const (
	DefaultOverlap = 24 * time.Hour
	// MinOverlap is the shortest overlap: key times are whole seconds, so a
	// shorter one would end before it began.
	MinOverlap = time.Second
	MaxOverlap = 90 * envconf.Day
	// CallerCacheTTL is the secret-cache time of the callers (the AWS caching
	// client's default); an overlap shorter than that warns.
	CallerCacheTTL = apikey.DefaultCallerCacheTTL
	DefaultMaxAge  = 90 * envconf.Day
	// MaxMaxAge is the longest key lifetime, the longest duration the
	// grammar's days allow (ten years).
	MaxMaxAge            = 3650 * envconf.Day
	DefaultAPIKeyPrefix  = "sk"
	DefaultWebhookPrefix = "whsec"
)

// Config is the function's configuration. ConfigFromEnv fills it from the
// environment; tests build it directly. Fields carry settings, not clients
// (the HTTP client is in Deps).
type Config struct {
	// Kind is apikey or webhook; empty: from the caller secret's kind.
	Kind string
	// Prefix of new keys; empty: sk for API keys, whsec for webhook keys.
	Prefix string
	// Overlap is how long the previous key stays valid after a rotation
	// (MinOverlap to MaxOverlap).
	Overlap time.Duration
	// MaxAge is a key's lifetime from creation (its expiresAt); longer than
	// Overlap, at most MaxMaxAge.
	MaxAge time.Duration
	// VerifierSecretID is the verifier secret (required).
	VerifierSecretID string
	// PepperSecretID, if set, makes API-key records HMAC-SHA-256 under the
	// pepper it holds instead of plain SHA-256. Not for webhook keys.
	PepperSecretID string
	// RegisterURL, if set, receives each new key's record (https, no user
	// information); RegisterHMACSecretID must be set with it.
	RegisterURL string
	// RegisterHMACSecretID holds the key that signs registration requests.
	RegisterHMACSecretID string
	// TestURL, if set, is called with the pending key in testSecret (https,
	// no user information).
	TestURL string
	// CAPEM, from the file APIKEY_CA_FILE names (ConfigFromEnv reads it), is
	// a PEM bundle trusted besides the system roots by the client New builds
	// for the two URLs.
	CAPEM []byte
	// Warnings are settings that work but are risky, found by
	// ConfigFromEnv; main logs them once at start-up.
	Warnings []string
}

// ConfigFromEnv reads the configuration from the environment through
// internal/envconf; every problem is reported at once as one
// rotation.ClassConfiguration error naming the variables. Durations are in
// the one grammar (Go durations such as 90m or 36h, or whole days such as
// 7d). It reads the APIKEY_CA_FILE file, so a missing or empty bundle fails
// at cold start. Warnings are in cfg.Warnings.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Kind:                 r.String(EnvKind, ""),
		Prefix:               r.String(EnvPrefix, ""),
		Overlap:              r.Duration(EnvOverlap, DefaultOverlap, MinOverlap, MaxOverlap),
		MaxAge:               r.Duration(EnvMaxAge, DefaultMaxAge, MinOverlap, MaxMaxAge),
		VerifierSecretID:     r.String(EnvVerifierSecretARN, ""),
		PepperSecretID:       r.String(EnvPepperSecretARN, ""),
		RegisterURL:          r.String(EnvRegisterURL, ""),
		RegisterHMACSecretID: r.String(EnvRegisterHMACSecretARN, ""),
		TestURL:              r.String(EnvTestURL, ""),
	}
	if path, ok := r.Lookup(EnvCAFile); ok {
		switch pem, err := os.ReadFile(path); {
		case err != nil:
			r.Problem(EnvCAFile, "cannot be read: %v", err)
		case len(bytes.TrimSpace(pem)) == 0:
			r.Problem(EnvCAFile, "names an empty file: it must hold PEM certificates")
		default:
			c.CAPEM = pem
		}
		if c.RegisterURL == "" && c.TestURL == "" {
			r.Warn("%s is set, but neither %s nor %s is: nothing uses the bundle", EnvCAFile, EnvRegisterURL, EnvTestURL)
		}
	}
	c.check(r)
	c.Warnings = r.Warnings()
	return c, r.Err()
}

// check records every problem of c in r, and a warning for each setting
// that works but is risky. ConfigFromEnv runs it on what it read (a value it
// could not read is already a problem, and its default is checked here);
// New runs it on the Config it is given.
func (c *Config) check(r *envconf.Reader) {
	switch c.Kind {
	case "", apikey.KindAPIKey, apikey.KindWebhook:
	default:
		r.Problem(EnvKind, "must be apikey, webhook or unset (take the kind from the secret)")
	}
	if c.Prefix != "" && !apikey.ValidPrefix(c.Prefix) {
		r.Problem(EnvPrefix, "must be 2–16 of [a-z0-9], starting with a letter")
	}
	if c.Overlap < MinOverlap || c.Overlap > MaxOverlap {
		r.Problem(EnvOverlap, "%s is outside %s…%s", envconf.FormatDuration(c.Overlap), envconf.FormatDuration(MinOverlap), envconf.FormatDuration(MaxOverlap))
	} else if c.Overlap < CallerCacheTTL {
		r.Warn("%s %s is shorter than the callers' secret-cache time of %s: a caller that cached the previous key can be refused before it re-reads the secret", EnvOverlap, envconf.FormatDuration(c.Overlap), envconf.FormatDuration(CallerCacheTTL))
	}
	switch {
	case c.MaxAge > MaxMaxAge:
		r.Problem(EnvMaxAge, "%s is longer than %s", envconf.FormatDuration(c.MaxAge), envconf.FormatDuration(MaxMaxAge))
	case c.MaxAge <= c.Overlap:
		r.Problem(EnvMaxAge, "%s must be longer than %s %s", envconf.FormatDuration(c.MaxAge), EnvOverlap, envconf.FormatDuration(c.Overlap))
	}
	if c.VerifierSecretID == "" {
		r.Problem(EnvVerifierSecretARN, "is required: the secret that holds the verifier records")
	}
	if c.PepperSecretID != "" && c.Kind == apikey.KindWebhook {
		r.Problem(EnvPepperSecretARN, pepperForWebhook)
	}
	for _, u := range []struct{ name, v string }{{EnvRegisterURL, c.RegisterURL}, {EnvTestURL, c.TestURL}} {
		if u.v == "" {
			continue
		}
		// The URL is not quoted back: its query could hold a token.
		if p, err := url.Parse(u.v); err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
			r.Problem(u.name, "must be an https:// URL without user information")
		}
	}
	if (c.RegisterURL == "") != (c.RegisterHMACSecretID == "") {
		r.Problem(EnvRegisterHMACSecretARN, "and %s must be set together: registrations are always signed", EnvRegisterURL)
	}
	if len(c.CAPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CAPEM) {
		r.Problem(EnvCAFile, "holds no PEM certificate")
	}
}

// pepperForWebhook is the problem of a pepper set for webhook keys, found
// by check when APIKEY_KIND says webhook and at run time when the secret does.
const pepperForWebhook = "has no meaning for webhook keys (their verifier must hold the key itself); unset it"
