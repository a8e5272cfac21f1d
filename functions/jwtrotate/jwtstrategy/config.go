package jwtstrategy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Config is the function's configuration, read from the environment.
type Config struct {
	// Algorithm signs new keys of secrets that do not name one (JWT_ALGORITHM,
	// default ES256).
	Algorithm string
	// RSABits is the RS256 key size (JWT_RSA_BITS: 2048 or 3072; default 2048).
	RSABits int
	// MaxTokenLifetime is the longest "exp - iat" a signer issues
	// (JWT_MAX_TOKEN_LIFETIME, default 1h).
	MaxTokenLifetime time.Duration
	// ClockSkew is the leeway verifiers allow (JWT_CLOCK_SKEW, default 2m).
	ClockSkew time.Duration
	// SignerCache is how long a signer keeps using a key it loaded, and the
	// upper bound of the JWK Set's HTTP max-age (JWT_SIGNER_CACHE, default 15m).
	SignerCache time.Duration
	// MinPublish is the minimum time a key is published before it signs
	// (JWT_MIN_PUBLISH, default 24h): at least the longest time a verifier
	// caches the JWK Set. The rotation interval must not be shorter.
	MinPublish time.Duration
	// PublicJWKSSecretARN, if set, is a second secret that receives the JWK
	// Set alone, for services that must not read the signing-key secret
	// (JWT_PUBLIC_JWKS_SECRET_ARN).
	PublicJWKSSecretARN string
	// KMSKeyARN is the KMS key private keys are sealed under (JWT_KMS_KEY_ARN,
	// required; a key ARN, so the allow-list cannot move with an alias).
	KMSKeyARN string
	// EnvelopeFormat is the envelope format new private keys are sealed in
	// (JWT_ENVELOPE_FORMAT: 2, the default, or 1 while applications whose
	// pkg/jwks predates format 2 still open keys). Keys of either format
	// stay readable.
	EnvelopeFormat int
}

// RemovalDelay is how long a retired key stays in the JWK Set: a token it
// signed just before a signer noticed the rotation lives MaxTokenLifetime,
// verifiers accept it ClockSkew longer, and signers keep the retired key up
// to SignerCache after the rotation.
func (c Config) RemovalDelay() time.Duration {
	return c.MaxTokenLifetime + c.ClockSkew + c.SignerCache
}

// Defaults.
const (
	DefaultMaxTokenLifetime = time.Hour
	DefaultClockSkew        = 2 * time.Minute
	DefaultSignerCache      = 15 * time.Minute
	DefaultMinPublish       = 24 * time.Hour
)

// LoadConfig reads the configuration; any invalid setting is a
// rotation.ClassConfiguration error naming the variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Algorithm:           strings.TrimSpace(getenv("JWT_ALGORITHM")),
		PublicJWKSSecretARN: strings.TrimSpace(getenv("JWT_PUBLIC_JWKS_SECRET_ARN")),
		KMSKeyARN:           strings.TrimSpace(getenv("JWT_KMS_KEY_ARN")),
	}
	if c.Algorithm == "" {
		c.Algorithm = jwks.ES256
	}
	if err := jwks.CheckAlgorithm(c.Algorithm); err != nil {
		return Config{}, cfgErr("JWT_ALGORITHM", "%q is not supported: use ES256 (default), RS256 or EdDSA", c.Algorithm)
	}
	c.RSABits = 2048
	if s := strings.TrimSpace(getenv("JWT_RSA_BITS")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || (n != 2048 && n != 3072) {
			return Config{}, cfgErr("JWT_RSA_BITS", "%q: use 2048 or 3072", s)
		}
		c.RSABits = n
	}
	c.EnvelopeFormat = 2
	if s := strings.TrimSpace(getenv("JWT_ENVELOPE_FORMAT")); s != "" {
		if s != "1" && s != "2" {
			return Config{}, cfgErr("JWT_ENVELOPE_FORMAT", "%q: use 2 (default) or 1 (for readers that predate envelope format 2)", s)
		}
		c.EnvelopeFormat = int(s[0] - '0')
	}
	durs := []struct {
		name     string
		dst      *time.Duration
		def      time.Duration
		min, max time.Duration
	}{
		{"JWT_MAX_TOKEN_LIFETIME", &c.MaxTokenLifetime, DefaultMaxTokenLifetime, time.Minute, 30 * 24 * time.Hour},
		{"JWT_CLOCK_SKEW", &c.ClockSkew, DefaultClockSkew, 0, time.Hour},
		{"JWT_SIGNER_CACHE", &c.SignerCache, DefaultSignerCache, time.Second, 24 * time.Hour},
		{"JWT_MIN_PUBLISH", &c.MinPublish, DefaultMinPublish, time.Minute, 365 * 24 * time.Hour},
	}
	for _, d := range durs {
		*d.dst = d.def
		s := strings.TrimSpace(getenv(d.name))
		if s == "" {
			continue
		}
		v, err := parseDuration(s)
		if err != nil {
			return Config{}, cfgErr(d.name, "%q is not a duration (like 90m, 24h or 7d)", s)
		}
		if v < d.min || v > d.max {
			return Config{}, cfgErr(d.name, "%s is outside %s…%s", v, d.min, d.max)
		}
		*d.dst = v
	}
	if c.KMSKeyARN == "" {
		return Config{}, cfgErr("JWT_KMS_KEY_ARN", "is required: the ARN of the KMS key the private keys are sealed under")
	}
	if !isARN(c.KMSKeyARN, "kms", "key/") {
		return Config{}, cfgErr("JWT_KMS_KEY_ARN", "%q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases are not accepted so the allowed key cannot move", c.KMSKeyARN)
	}
	if c.PublicJWKSSecretARN != "" && !isARN(c.PublicJWKSSecretARN, "secretsmanager", "secret:") {
		return Config{}, cfgErr("JWT_PUBLIC_JWKS_SECRET_ARN", "%q is not a Secrets Manager secret ARN", c.PublicJWKSSecretARN)
	}
	return c, nil
}

func cfgErr(name, format string, args ...any) error {
	return rotation.NewError(rotation.ClassConfiguration, name, name+" "+fmt.Sprintf(format, args...), nil)
}

// parseDuration accepts Go durations and a whole number of days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("bad day count")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// isARN checks arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE with the
// resource starting with prefix.
func isARN(s, service, prefix string) bool {
	p := strings.SplitN(s, ":", 6)
	return len(p) == 6 && p[0] == "arn" && p[1] != "" && p[2] == service && p[3] != "" && p[4] != "" &&
		strings.HasPrefix(p[5], prefix) && len(p[5]) > len(prefix)
}
