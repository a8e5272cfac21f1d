package jwtstrategy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/internal/envconf"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The environment variables ConfigFromEnv reads (docs/jwt.md#configuration).
const (
	EnvKMSKeyARN           = "JWT_KMS_KEY_ARN"
	EnvAlgorithm           = "JWT_ALGORITHM"
	EnvRSABits             = "JWT_RSA_BITS"
	EnvEnvelopeFormat      = "JWT_ENVELOPE_FORMAT"
	EnvMaxTokenLifetime    = "JWT_MAX_TOKEN_LIFETIME"
	EnvClockSkew           = "JWT_CLOCK_SKEW"
	EnvSignerCache         = "JWT_SIGNER_CACHE"
	EnvMinPublish          = "JWT_MIN_PUBLISH"
	EnvPublicJWKSSecretARN = "JWT_PUBLIC_JWKS_SECRET_ARN"
)

// Defaults.
const (
	DefaultAlgorithm        = jwks.ES256
	DefaultRSABits          = 2048
	DefaultEnvelopeFormat   = 2
	DefaultMaxTokenLifetime = time.Hour
	DefaultClockSkew        = 2 * time.Minute
	DefaultSignerCache      = 15 * time.Minute
	DefaultMinPublish       = 24 * time.Hour
)

// durationBounds are the inclusive bounds of the duration settings; both
// ConfigFromEnv and New apply them.
var durationBounds = map[string]struct{ min, max time.Duration }{
	EnvMaxTokenLifetime: {time.Minute, 30 * envconf.Day},
	EnvClockSkew:        {0, time.Hour},
	EnvSignerCache:      {time.Second, envconf.Day},
	EnvMinPublish:       {time.Minute, 365 * envconf.Day},
}

// Config is the function's configuration. ConfigFromEnv fills it from the
// environment; tests build it directly. Fields carry settings, not clients.
type Config struct {
	// Algorithm signs new keys of secrets that do not name one
	// (JWT_ALGORITHM: ES256, the default, RS256 or EdDSA).
	Algorithm string
	// RSABits is the RS256 key size (JWT_RSA_BITS: 2048, the default, or
	// 3072). New reads 0 as 2048.
	RSABits int
	// MaxTokenLifetime is the longest "exp - iat" a signer issues
	// (JWT_MAX_TOKEN_LIFETIME, default 1h, 1m…30d).
	MaxTokenLifetime time.Duration
	// ClockSkew is the leeway verifiers allow (JWT_CLOCK_SKEW, default 2m,
	// 0…1h).
	ClockSkew time.Duration
	// SignerCache is how long a signer keeps using a key it loaded, and the
	// upper bound of the JWK Set's HTTP max-age (JWT_SIGNER_CACHE, default
	// 15m, 1s…24h).
	SignerCache time.Duration
	// MinPublish is the minimum time a key is published before it signs
	// (JWT_MIN_PUBLISH, default 24h, 1m…365d): at least the longest time a
	// verifier caches the JWK Set. Create warns when the rotation interval
	// is shorter.
	MinPublish time.Duration
	// PublicJWKSSecretARN, if set, is a second secret that receives the JWK
	// Set alone, for services that must not read the signing-key secret
	// (JWT_PUBLIC_JWKS_SECRET_ARN, a Secrets Manager secret ARN).
	PublicJWKSSecretARN string
	// KMSKeyARN is the KMS key private keys are sealed under (JWT_KMS_KEY_ARN,
	// required; a key ARN, so the allow-list cannot move with an alias).
	// main builds Deps.Envelope over it; the strategy names it in errors.
	KMSKeyARN string
	// EnvelopeFormat is the envelope format new private keys are sealed in
	// (JWT_ENVELOPE_FORMAT: 2, the default, or 1 while applications whose
	// pkg/jwks predates format 2 still open keys). Keys of either format
	// stay readable. main builds Deps.Envelope with it; 0 means the
	// envelope's default, 2.
	EnvelopeFormat int
	// Warnings are settings that work but are risky, found by
	// ConfigFromEnv; main logs them once at start-up.
	Warnings []string
}

// RemovalDelay is how long a retired key stays in the JWK Set: a token it
// signed just before a signer noticed the rotation lives MaxTokenLifetime,
// verifiers accept it ClockSkew longer, and signers keep the retired key up
// to SignerCache after the rotation.
func (c Config) RemovalDelay() time.Duration {
	return c.MaxTokenLifetime + c.ClockSkew + c.SignerCache
}

// ConfigFromEnv reads the configuration from the environment through
// internal/envconf; every problem is reported at once as one
// rotation.ClassConfiguration error. Warnings (settings that work but are
// risky) are in cfg.Warnings, logged once at start-up by main.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	dur := func(name string, def time.Duration) time.Duration {
		b := durationBounds[name]
		return r.Duration(name, def, b.min, b.max)
	}
	c := Config{
		KMSKeyARN:           r.String(EnvKMSKeyARN, ""),
		Algorithm:           r.OneOf(EnvAlgorithm, DefaultAlgorithm, jwks.Algorithms...),
		RSABits:             atoi(r.OneOf(EnvRSABits, strconv.Itoa(DefaultRSABits), "2048", "3072")),
		EnvelopeFormat:      atoi(r.OneOf(EnvEnvelopeFormat, strconv.Itoa(DefaultEnvelopeFormat), "2", "1")),
		MaxTokenLifetime:    dur(EnvMaxTokenLifetime, DefaultMaxTokenLifetime),
		ClockSkew:           dur(EnvClockSkew, DefaultClockSkew),
		SignerCache:         dur(EnvSignerCache, DefaultSignerCache),
		MinPublish:          dur(EnvMinPublish, DefaultMinPublish),
		PublicJWKSSecretARN: r.String(EnvPublicJWKSSecretARN, ""),
	}
	// What envconf refused came back as the default, which passes; what
	// remains are the checks envconf has no reader for (the ARNs).
	c.check(r.Problem)
	c.Warnings = r.Warnings()
	return c, r.Err()
}

// atoi converts a value OneOf already restricted to digits.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// check reports every problem of c through problem, named by variable. It
// is the one list of rules, for a Config read from the environment and for
// one built in code.
func (c Config) check(problem func(name, format string, args ...any)) {
	if c.KMSKeyARN == "" {
		problem(EnvKMSKeyARN, "is required: the ARN of the KMS key the private keys are sealed under")
	} else if !isARN(c.KMSKeyARN, "kms", "key/") {
		problem(EnvKMSKeyARN, "%q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases are not accepted so the allowed key cannot move", c.KMSKeyARN)
	}
	if err := jwks.CheckAlgorithm(c.Algorithm); err != nil {
		problem(EnvAlgorithm, "%q is not supported: use one of %s", c.Algorithm, strings.Join(jwks.Algorithms, ", "))
	}
	if c.RSABits != 0 && c.RSABits != 2048 && c.RSABits != 3072 {
		problem(EnvRSABits, "%d: use 2048 or 3072", c.RSABits)
	}
	if c.EnvelopeFormat < 0 || c.EnvelopeFormat > 2 {
		problem(EnvEnvelopeFormat, "%d: use 2 (default) or 1 (for readers that predate envelope format 2)", c.EnvelopeFormat)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{EnvMaxTokenLifetime, c.MaxTokenLifetime},
		{EnvClockSkew, c.ClockSkew},
		{EnvSignerCache, c.SignerCache},
		{EnvMinPublish, c.MinPublish},
	} {
		if b := durationBounds[d.name]; d.v < b.min || d.v > b.max {
			problem(d.name, "%s is outside %s…%s", envconf.FormatDuration(d.v), envconf.FormatDuration(b.min), envconf.FormatDuration(b.max))
		}
	}
	if c.PublicJWKSSecretARN != "" && !isARN(c.PublicJWKSSecretARN, "secretsmanager", "secret:") {
		problem(EnvPublicJWKSSecretARN, "%q is not a Secrets Manager secret ARN", c.PublicJWKSSecretARN)
	}
}

// validate is check as one error: nil, or a rotation.ClassConfiguration
// error that lists every problem, named by the first variable at fault.
func (c Config) validate() error {
	var names, problems []string
	c.check(func(name, format string, args ...any) {
		names = append(names, name)
		problems = append(problems, name+" "+fmt.Sprintf(format, args...))
	})
	if len(problems) == 0 {
		return nil
	}
	return rotation.NewError(rotation.ClassConfiguration, names[0], "the jwtrotate configuration is invalid: "+strings.Join(problems, "; "), nil)
}

// isARN checks arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE with the
// resource starting with prefix.
func isARN(s, service, prefix string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[1] != "" && p[2] == service && p[3] != "" && p[4] != "" &&
		strings.HasPrefix(p[5], prefix) && len(p[5]) > len(prefix)
}
