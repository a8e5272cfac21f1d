package redisstrategy

import (
	"time"

	"github.com/rotation-suite/rotation/internal/envconf"
)

// Environment variables the function reads at start-up.
const (
	EnvAdminSecretARN = "REDIS_ADMIN_SECRET_ARN"
	EnvPasswordLength = "REDIS_PASSWORD_LENGTH"
	EnvCommandTimeout = "REDIS_COMMAND_TIMEOUT"
)

// Defaults and bounds.
const (
	DefaultPasswordLength = 32
	DefaultCommandTimeout = 5 * time.Second
)

// Config is the function's configuration. ConfigFromEnv fills it from the
// environment; tests build it directly. Fields carry settings, not clients.
type Config struct {
	// AdminSecretARN is the secret holding the user that may run ACL
	// SETUSER ({"username","password"}).
	AdminSecretARN string
	// PasswordLength is the length of new passwords (16–128).
	PasswordLength int
	// CommandTimeout bounds each ACL command within the step's budget.
	CommandTimeout time.Duration
	// Warnings are settings that work but are risky, logged once at start-up.
	Warnings []string
}

// ConfigFromEnv reads the configuration from the environment; every problem
// is reported at once as one configuration error.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := envconf.New(getenv)
	c := Config{
		AdminSecretARN: r.Required(EnvAdminSecretARN, "the ARN of the secret of the Redis user that may run ACL SETUSER"),
		PasswordLength: r.Int(EnvPasswordLength, DefaultPasswordLength, 16, 128),
		CommandTimeout: r.Duration(EnvCommandTimeout, DefaultCommandTimeout, 100*time.Millisecond, time.Minute),
	}
	if c.PasswordLength < 24 {
		r.Warn("%s=%d: passwords shorter than 24 characters are within reach of an offline guess if a hash leaks", EnvPasswordLength, c.PasswordLength)
	}
	c.Warnings = r.Warnings()
	return c, r.Err()
}
