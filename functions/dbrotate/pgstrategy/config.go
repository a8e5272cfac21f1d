package pgstrategy

import (
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

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

// Config is the function's configuration, from the environment.
type Config struct {
	Password PasswordPolicy
	// CABundlePEM, from DB_CA_BUNDLE_FILE, is trusted in addition to the
	// system roots and a bundle in the secret.
	CABundlePEM []byte
	// OutgoingGrace is how long the outgoing alternating role keeps working
	// after finishSecret; 0 disables the expiry.
	OutgoingGrace time.Duration
	// AllowPlaintext lets a secret with "sslmode":"disable" connect without
	// TLS. Every rotation that does so carries a warning.
	AllowPlaintext bool
}

// ConfigFromEnv reads the configuration. Every problem is reported at once,
// as one ClassConfiguration error, so it shows at cold start.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Password: PasswordPolicy{Length: DefaultPasswordLength, Exclude: DefaultExclude}, OutgoingGrace: DefaultOutgoingGrace}
	var problems []string
	if v, ok := lookup(getenv, EnvExcludeCharacters); ok {
		c.Password.Exclude = v
	}
	if v, ok := lookup(getenv, EnvPasswordLength); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q is not a whole number", EnvPasswordLength, v))
		} else {
			c.Password.Length = n
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{EnvExcludeNumbers, &c.Password.NoDigits}, {EnvExcludePunctuation, &c.Password.NoPunctuation},
		{EnvExcludeUppercase, &c.Password.NoUpper}, {EnvExcludeLowercase, &c.Password.NoLower},
		{EnvAllowPlaintext, &c.AllowPlaintext}} {
		if v, ok := lookup(getenv, b.name); ok {
			x, err := strconv.ParseBool(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q is not true or false", b.name, v))
			}
			*b.dst = x
		}
	}
	if err := c.Password.Validate(); err != nil && len(problems) == 0 {
		problems = append(problems, err.Error())
	}
	if v, ok := lookup(getenv, EnvOutgoingGrace); ok {
		d, err := parseGrace(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", EnvOutgoingGrace, v, err))
		}
		c.OutgoingGrace = d
	}
	if path, ok := lookup(getenv, EnvCABundleFile); ok {
		pem, err := os.ReadFile(path)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %v", EnvCABundleFile, err))
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			problems = append(problems, fmt.Sprintf("%s=%s holds no PEM certificate", EnvCABundleFile, path))
		default:
			c.CABundlePEM = pem
		}
	}
	if len(problems) > 0 {
		return c, rotation.NewError(rotation.ClassConfiguration, "read environment",
			"the function's environment is invalid; fix it and redeploy: "+strings.Join(problems, "; "), nil)
	}
	return c, nil
}

func lookup(getenv func(string) string, k string) (string, bool) {
	v := strings.TrimSpace(getenv(k))
	return v, v != ""
}

// parseGrace accepts a Go duration ("36h", "90m"), a number of seconds, or
// a number of days with a "d" suffix ("7d"). 0 disables the expiry.
func parseGrace(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	switch {
	case strings.HasSuffix(v, "d"):
		var n int
		n, err = strconv.Atoi(strings.TrimSuffix(v, "d"))
		d = time.Duration(n) * 24 * time.Hour
	case strings.Trim(v, "0123456789") == "":
		var n int
		n, err = strconv.Atoi(v)
		d = time.Duration(n) * time.Second
	default:
		d, err = time.ParseDuration(v)
	}
	if err != nil {
		return 0, fmt.Errorf("not a duration (use 36h, 90m, 7d or seconds)")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative")
	}
	if d > 0 && d < time.Minute {
		return 0, fmt.Errorf("below one minute; use 0 to disable the expiry")
	}
	if d > 3650*24*time.Hour {
		return 0, fmt.Errorf("longer than ten years")
	}
	return d, nil
}
