package pgstrategy

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/internal/envconf"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Environment variables the function reads at start-up.
const (
	EnvExcludeCharacters  = "EXCLUDE_CHARACTERS"
	EnvPasswordLength     = "PASSWORD_LENGTH"
	EnvExcludeNumbers     = "EXCLUDE_NUMBERS"
	EnvExcludePunctuation = "EXCLUDE_PUNCTUATION"
	EnvExcludeUppercase   = "EXCLUDE_UPPERCASE"
	EnvExcludeLowercase   = "EXCLUDE_LOWERCASE"
	EnvCABundleFile       = "DB_CA_BUNDLE_FILE"
	EnvOutgoingGrace      = "OUTGOING_USER_GRACE"
	EnvAllowPlaintext     = "ALLOW_PLAINTEXT_DB_CONNECTIONS"
)

// DefaultOutgoingGrace is how long the outgoing role of an alternating pair
// keeps accepting new logins after the switch, when OUTGOING_USER_GRACE is
// not set.
const DefaultOutgoingGrace = 24 * time.Hour

// Bounds of OutgoingGrace other than 0 (never expire).
const (
	MinOutgoingGrace = time.Minute
	MaxOutgoingGrace = 3650 * envconf.Day
)

// Config is the function's configuration. ConfigFromEnv fills it from the
// environment; tests build it directly. Fields carry settings, not clients.
type Config struct {
	// Password is the policy of the generated passwords.
	Password password.Policy
	// CABundlePEM, from DB_CA_BUNDLE_FILE, is trusted in addition to the
	// system roots and a bundle in the secret.
	CABundlePEM []byte
	// OutgoingGrace is how long the outgoing alternating role keeps working
	// after finishSecret; 0 disables the expiry. Otherwise it is within
	// MinOutgoingGrace…MaxOutgoingGrace.
	OutgoingGrace time.Duration
	// AllowPlaintext lets a secret with "sslmode":"disable" connect without
	// TLS. Every rotation that does so carries a warning.
	AllowPlaintext bool
	// Warnings are settings that work but are risky, found by
	// ConfigFromEnv; main logs them once at start-up.
	Warnings []string
}

// ConfigFromEnv reads the configuration from the environment through
// internal/envconf; every problem is reported at once as one
// rotation.ClassConfiguration error, so it shows at cold start. Warnings
// (settings that work but are risky) are in cfg.Warnings, logged once at
// start-up by main.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		Password: password.Policy{
			Length:        r.Int(EnvPasswordLength, password.DefaultLength, password.MinLength, password.MaxLength),
			Exclude:       r.String(EnvExcludeCharacters, password.DefaultExclude),
			NoDigits:      r.Bool(EnvExcludeNumbers, false),
			NoPunctuation: r.Bool(EnvExcludePunctuation, false),
			NoUpper:       r.Bool(EnvExcludeUppercase, false),
			NoLower:       r.Bool(EnvExcludeLowercase, false),
		},
		OutgoingGrace:  r.DurationOrOff(EnvOutgoingGrace, DefaultOutgoingGrace, MinOutgoingGrace, MaxOutgoingGrace),
		AllowPlaintext: r.Bool(EnvAllowPlaintext, false),
	}
	if err := c.Password.Validate(); err != nil {
		r.Problem(EnvExcludeCharacters, "and the EXCLUDE_* settings: %v", err)
	}
	if path, ok := r.Lookup(EnvCABundleFile); ok {
		pem, err := os.ReadFile(path)
		switch {
		case err != nil:
			r.Problem(EnvCABundleFile, "cannot be read: %v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			r.Problem(EnvCABundleFile, "%s holds no PEM certificate", path)
		default:
			c.CABundlePEM = pem
		}
	}
	if c.AllowPlaintext {
		r.Warn("%s=true: a secret with \"sslmode\":\"disable\" connects without TLS, and its passwords cross the network readable", EnvAllowPlaintext)
	}
	if c.OutgoingGrace == 0 {
		r.Warn("%s=0: the outgoing role of an alternating pair never expires, so its old password keeps working until the next rotation", EnvOutgoingGrace)
	}
	c.Warnings = r.Warnings()
	return c, r.Err()
}

// check is New's check of a Config, the same a Config from ConfigFromEnv
// passed: every problem at once, as one configuration error.
func (c Config) check() error {
	var problems []string
	if err := c.Password.Validate(); err != nil {
		problems = append(problems, "Password: "+err.Error())
	}
	if g := c.OutgoingGrace; g != 0 && (g < MinOutgoingGrace || g > MaxOutgoingGrace) {
		problems = append(problems, fmt.Sprintf("OutgoingGrace %s is outside %s…%s, or 0 to turn it off",
			envconf.FormatDuration(g), envconf.FormatDuration(MinOutgoingGrace), envconf.FormatDuration(MaxOutgoingGrace)))
	}
	if len(c.CABundlePEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(c.CABundlePEM) {
		problems = append(problems, "CABundlePEM holds no PEM certificate")
	}
	if len(problems) == 0 {
		return nil
	}
	return rotation.NewError(rotation.ClassConfiguration, "configuration",
		"the strategy's configuration is invalid: "+strings.Join(problems, "; "), nil)
}
