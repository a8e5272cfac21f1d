package jwtstrategy

import (
	"log/slog"

	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// Deps are the clients and services the strategy uses, built by main.
type Deps struct {
	// Envelope seals new private keys and opens stored ones (required): a
	// pkg/envelope Envelope over the KMS key Config.KMSKeyARN that writes
	// Config.EnvelopeFormat.
	Envelope *envelope.Envelope
	// Logger is part of the shape every strategy shares; nil is fine. This
	// strategy writes no log lines of its own: what it has to say goes in
	// each step's report (warnings and details), which the engine logs and
	// notifies.
	Logger *slog.Logger
}

// Strategy rotates JWT signing keys. It implements rotation.Strategy.
type Strategy struct {
	cfg    Config
	sealer jwks.Sealer
}

var _ rotation.Strategy = (*Strategy)(nil)

// New checks cfg (the same rules ConfigFromEnv applies, so a Config built in
// code is held to them too) and that deps.Envelope is set, and returns the
// strategy. A problem is a rotation.ClassConfiguration error that lists
// every one. A zero RSABits is read as DefaultRSABits.
func New(cfg Config, deps Deps) (*Strategy, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Envelope == nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "jwtstrategy.New", "Deps.Envelope is required: the envelope that seals the private keys under "+EnvKMSKeyARN, nil)
	}
	if cfg.RSABits == 0 {
		cfg.RSABits = DefaultRSABits
	}
	return &Strategy{cfg: cfg, sealer: deps.Envelope}, nil
}

// Kind names the strategy.
func (s *Strategy) Kind() string { return "jwt" }

// parse parses a secret value as a key document.
func parse(op, which string, v []byte) (*jwks.Document, error) {
	d, err := jwks.ParseDocument(v)
	if err != nil {
		return nil, inputErr(op, "the "+which+" value is not a valid JWT key document (see docs/jwt.md)", err)
	}
	return d, nil
}
