// Package apikeystrategy is the API-key and webhook-signing-key rotation
// strategy: createSecret issues a new key as the pending caller secret;
// setSecret adds its verifier record to the verifier secret (and registers it
// with an optional HTTPS endpoint); testSecret verifies it through the
// consumer library pkg/apikey (and an optional test endpoint); after the
// engine promotes it, the previous key is set to retiring until the end of
// the overlap. Every issued key verifies until its own notAfter: a later
// rotation within the overlap retires another key but revokes none before
// its end (at most maxRetiring per caller; beyond that the rotation is
// refused), and only the operator's EmergencyRevokeTag revokes earlier keys
// at once. It owns the configuration, the record transitions and the HTTP
// calls; the key format, the documents and verification are pkg/apikey's, and
// labels, events and storage of the rotated secret are the engine's.
package apikeystrategy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Defaults and bounds.
const (
	DefaultOverlap = 24 * time.Hour
	// CallerCacheTTL is the secret-cache time of the callers (the AWS caching
	// client's default); an overlap shorter than that warns.
	CallerCacheTTL       = apikey.DefaultCallerCacheTTL
	MaxOverlap           = 90 * 24 * time.Hour
	DefaultMaxAge        = 90 * 24 * time.Hour
	DefaultAPIKeyPrefix  = "sk"
	DefaultWebhookPrefix = "whsec"
)

// Config is the function's configuration, from the environment.
type Config struct {
	// Kind is apikey or webhook; empty: from the caller secret's kind.
	Kind string
	// Prefix of new keys; empty: sk for API keys, whsec for webhook keys.
	Prefix string
	// Overlap is how long the previous key stays valid after a rotation.
	Overlap time.Duration
	// MaxAge is a key's lifetime from creation (its expiresAt).
	MaxAge time.Duration
	// VerifierSecretID is the verifier secret (required).
	VerifierSecretID string
	// PepperSecretID, if set, makes API-key records HMAC-SHA-256 under the
	// pepper it holds instead of plain SHA-256.
	PepperSecretID string
	// RegisterURL, if set, receives each new key's record (HTTPS).
	RegisterURL string
	// RegisterHMACSecretID holds the key that signs registration requests.
	RegisterHMACSecretID string
	// TestURL, if set, is called with the pending key in testSecret (HTTPS).
	TestURL string
	// HTTPClient makes the registration and test calls; nil: a client with
	// TLS 1.2+, system roots plus CAFile, no redirects.
	HTTPClient *http.Client
	// CAFile is an optional PEM bundle trusted besides the system roots.
	CAFile string
}

// LoadConfig reads the configuration from the environment. It returns the
// warnings to log once at start-up; a bad setting is a ClassConfiguration
// error naming the variable.
func LoadConfig(getenv func(string) string) (Config, []string, error) {
	c := Config{
		Kind:                 getenv("APIKEY_KIND"),
		Prefix:               getenv("APIKEY_PREFIX"),
		VerifierSecretID:     getenv("APIKEY_VERIFIER_SECRET_ARN"),
		PepperSecretID:       getenv("APIKEY_PEPPER_SECRET_ARN"),
		RegisterURL:          getenv("APIKEY_REGISTER_URL"),
		RegisterHMACSecretID: getenv("APIKEY_REGISTER_HMAC_SECRET_ARN"),
		TestURL:              getenv("APIKEY_TEST_URL"),
		CAFile:               getenv("APIKEY_CA_FILE"),
		Overlap:              DefaultOverlap,
		MaxAge:               DefaultMaxAge,
	}
	var err error
	if v := getenv("APIKEY_OVERLAP"); v != "" {
		if c.Overlap, err = time.ParseDuration(v); err != nil {
			return c, nil, configErr("APIKEY_OVERLAP", "is not a Go duration such as 24h or 90m", err)
		}
	}
	if v := getenv("APIKEY_MAX_AGE"); v != "" {
		if c.MaxAge, err = time.ParseDuration(v); err != nil {
			return c, nil, configErr("APIKEY_MAX_AGE", "is not a Go duration such as 2160h", err)
		}
	}
	warnings, err := c.Validate()
	return c, warnings, err
}

// Validate checks c and fills defaults; it returns warnings for settings that
// work but are risky.
func (c *Config) Validate() ([]string, error) {
	var warnings []string
	switch c.Kind {
	case "", apikey.KindAPIKey, apikey.KindWebhook:
	default:
		return nil, configErr("APIKEY_KIND", "must be apikey, webhook or empty (take the kind from the secret)", nil)
	}
	if c.Prefix != "" && !apikey.ValidPrefix(c.Prefix) {
		return nil, configErr("APIKEY_PREFIX", "must be 2–16 of [a-z0-9], starting with a letter", nil)
	}
	if c.Overlap <= 0 || c.Overlap > MaxOverlap {
		return nil, configErr("APIKEY_OVERLAP", fmt.Sprintf("must be positive and at most %s", MaxOverlap), nil)
	}
	if c.Overlap < CallerCacheTTL {
		warnings = append(warnings, fmt.Sprintf("APIKEY_OVERLAP %s is shorter than the callers' secret-cache time of %s: a caller that cached the previous key can be refused before it re-reads the secret", c.Overlap, CallerCacheTTL))
	}
	if c.MaxAge <= c.Overlap {
		return nil, configErr("APIKEY_MAX_AGE", "must be longer than APIKEY_OVERLAP", nil)
	}
	if c.VerifierSecretID == "" {
		return nil, configErr("APIKEY_VERIFIER_SECRET_ARN", "is required: the secret that holds the verifier records", nil)
	}
	if c.PepperSecretID != "" && c.Kind == apikey.KindWebhook {
		return nil, configErr("APIKEY_PEPPER_SECRET_ARN", "has no meaning for webhook keys (their verifier must hold the key itself); unset it", nil)
	}
	for _, u := range []struct{ name, v string }{{"APIKEY_REGISTER_URL", c.RegisterURL}, {"APIKEY_TEST_URL", c.TestURL}} {
		if u.v == "" {
			continue
		}
		p, err := url.Parse(u.v)
		if err != nil || p.Scheme != "https" || p.Host == "" || p.User != nil {
			return nil, configErr(u.name, "must be an https:// URL without user information", nil)
		}
	}
	if (c.RegisterURL == "") != (c.RegisterHMACSecretID == "") {
		return nil, configErr("APIKEY_REGISTER_HMAC_SECRET_ARN", "and APIKEY_REGISTER_URL must be set together: registrations are always signed", nil)
	}
	if c.HTTPClient == nil && (c.RegisterURL != "" || c.TestURL != "") {
		client, err := newHTTPClient(c.CAFile)
		if err != nil {
			return nil, err
		}
		c.HTTPClient = client
	}
	return warnings, nil
}

func newHTTPClient(caFile string) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, configErr("APIKEY_CA_FILE", "cannot be read", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr("APIKEY_CA_FILE", "holds no PEM certificate", nil)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.Proxy = http.ProxyFromEnvironment
	return &http.Client{
		Transport: tr,
		// A redirect could carry a key or a registration elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

func configErr(name, msg string, cause error) error {
	return rotation.NewError(rotation.ClassConfiguration, name, name+" "+msg, cause)
}
