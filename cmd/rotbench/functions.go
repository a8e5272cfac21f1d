package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/functions/apikeyrotate/apikeystrategy"
	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// subject is one function configuration under test: the function it is,
// its environment (the same for the in-process engine and the bootstrap),
// and two secrets: warm, rotated in-process many times, and cold, rotated
// once in-process and then by a fresh bootstrap process.
type subject struct {
	key      string // "db-single", "db-alternating", "jwt", "apikey"
	label    string
	function string // dbrotate, jwtrotate, apikeyrotate
	env      []string
	coldEnv  []string // environment of the cold secret's function, if it differs
	warm     string   // secret ARN
	cold     string   // secret ARN
	// advance, if set, moves the strategy's clock this far after each
	// rotation, so keys published or retired in one rotation have come of
	// age by the next, as on a real schedule.
	advance time.Duration
}

// clock is an engine clock that can be moved forward between rotations.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func getenvFrom(env []string) func(string) string {
	m := map[string]string{}
	for _, kv := range env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				m[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	return func(k string) string { return m[k] }
}

// engineFor builds the function in-process the way its main.go does
// (internal/fnmain and the function's builder), with the SDK aimed at the
// counting proxy: the strategy from the function's own constructor, the
// shared engine, a JSON logger at info level (written nowhere), and clk.
func (s *stack) engineFor(ctx context.Context, function string, env []string, clk *clock) (*rotation.Engine, func(), error) {
	getenv := getenvFrom(env)
	var strategy rotation.Strategy
	closer := func() {}
	switch function {
	case "dbrotate":
		cfg, err := pgstrategy.ConfigFromEnv(getenv)
		if err != nil {
			return nil, nil, err
		}
		st, err := pgstrategy.New(cfg, pgstrategy.Deps{})
		if err != nil {
			return nil, nil, err
		}
		strategy, closer = st, st.Close
	case "jwtrotate":
		cfg, err := jwtstrategy.ConfigFromEnv(getenv)
		if err != nil {
			return nil, nil, err
		}
		kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: kms.NewFromConfig(s.fnAWS), KeyID: cfg.KMSKeyARN})
		if err != nil {
			return nil, nil, err
		}
		env, err := envelope.New(envelope.Config{Provider: kp})
		if err != nil {
			return nil, nil, err
		}
		if strategy, err = jwtstrategy.New(cfg, jwtstrategy.Deps{Envelope: env}); err != nil {
			return nil, nil, err
		}
	case "apikeyrotate":
		cfg, err := apikeystrategy.ConfigFromEnv(getenv)
		if err != nil {
			return nil, nil, err
		}
		if strategy, err = apikeystrategy.New(cfg, apikeystrategy.Deps{}); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("unknown function %s", function)
	}
	now := time.Now
	if clk != nil {
		now = clk.Now
	}
	eng, err := rotation.New(rotation.Config{
		Secrets:  s.fnSM,
		Strategy: strategy,
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:  io.Discard,
		Now:      now,
	})
	if err != nil {
		return nil, nil, err
	}
	return eng, closer, nil
}

// seedSubjects creates the roles and secrets of the four subjects.
func (s *stack) seedSubjects(ctx context.Context) ([]*subject, error) {
	roles, err := s.newRoles(ctx, "", "bench_single_warm", "bench_single_cold", "bench_alt_warm", "bench_alt_cold")
	if err != nil {
		return nil, err
	}
	admins, err := s.newRoles(ctx, "CREATEROLE", "bench_admin")
	if err != nil {
		return nil, err
	}
	masterARN, err := s.CreateSecret(ctx, "/rotbench/db/admin", s.dbSecret(admins[0], ""))
	if err != nil {
		return nil, err
	}
	dbEnv := []string{"DB_CA_BUNDLE_FILE=" + s.caPEM, "OUTGOING_USER_GRACE=24h", "LOG_LEVEL=info"}
	single := &subject{key: "db-single", label: "dbrotate, single user", function: "dbrotate", env: dbEnv}
	alt := &subject{key: "db-alternating", label: "dbrotate, alternating users", function: "dbrotate", env: dbEnv}
	for _, x := range []struct {
		sub    *subject
		role   dbRole
		master string
		cold   bool
	}{{single, roles[0], "", false}, {single, roles[1], "", true}, {alt, roles[2], masterARN, false}, {alt, roles[3], masterARN, true}} {
		arn, err := s.CreateSecret(ctx, "/rotbench/db/"+x.role.name, s.dbSecret(x.role, x.master))
		if err != nil {
			return nil, err
		}
		if x.cold {
			x.sub.cold = arn
		} else {
			x.sub.warm = arn
		}
	}

	jwt := &subject{key: "jwt", label: "jwtrotate (ES256)", function: "jwtrotate", advance: 48 * time.Hour,
		env: []string{"JWT_KMS_KEY_ARN=" + s.kmsKey, "JWT_ALGORITHM=ES256", "LOG_LEVEL=info"}}
	if jwt.warm, err = s.CreateSecret(ctx, "/rotbench/jwt/warm", `{}`); err != nil {
		return nil, err
	}
	if jwt.cold, err = s.CreateSecret(ctx, "/rotbench/jwt/cold", `{}`); err != nil {
		return nil, err
	}

	api := &subject{key: "apikey", label: "apikeyrotate (API key, SHA-256)", function: "apikeyrotate", advance: 48 * time.Hour}
	var verifiers [2]string
	for i, which := range []string{"warm", "cold"} {
		if verifiers[i], err = s.CreateSecret(ctx, "/rotbench/apikey/verifier-"+which, `{"schemaVersion":1,"kind":"apikey","keys":[]}`); err != nil {
			return nil, err
		}
		arn, err := s.CreateSecret(ctx, "/rotbench/apikey/caller-"+which, `{"schemaVersion":1,"kind":"apikey"}`)
		if err != nil {
			return nil, err
		}
		if which == "warm" {
			api.warm = arn
		} else {
			api.cold = arn
		}
	}
	apiEnv := func(verifier string) []string {
		return []string{"APIKEY_VERIFIER_SECRET_ARN=" + verifier, "APIKEY_OVERLAP=24h", "APIKEY_PREFIX=sk", "LOG_LEVEL=info"}
	}
	api.env, api.coldEnv = apiEnv(verifiers[0]), apiEnv(verifiers[1])
	return []*subject{single, alt, jwt, api}, nil
}

func (sub *subject) coldEnvironment() []string {
	if sub.coldEnv != nil {
		return sub.coldEnv
	}
	return sub.env
}
