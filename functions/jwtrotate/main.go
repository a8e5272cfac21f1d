// Command jwtrotate is the Lambda function that rotates JWT signing-key
// secrets. It is wiring only: the environment goes to
// jwtstrategy.ConfigFromEnv, private keys are sealed with pkg/envelope over
// the KMS key JWT_KMS_KEY_ARN, and the rotation logic is jwtstrategy.Strategy
// run by the shared engine (internal/fnmain). See docs/jwt.md.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/rotation-suite/rotation/functions/jwtrotate/jwtstrategy"
	"github.com/rotation-suite/rotation/internal/fnmain"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func main() { fnmain.Run(build) }

func build(ctx context.Context, d fnmain.Deps) (rotation.Strategy, error) {
	cfg, err := jwtstrategy.ConfigFromEnv(d.Getenv)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		d.Logger.Warn("configuration warning", "warning", w)
	}
	env, err := newEnvelope(ctx, d, cfg)
	if err != nil {
		return nil, err
	}
	return jwtstrategy.New(cfg, jwtstrategy.Deps{Envelope: env, Logger: d.Logger})
}

// newEnvelope builds the sealer over the KMS key cfg.KMSKeyARN, writing
// cfg.EnvelopeFormat. No data-key cache: each rotation seals one new key and
// opens a few, and a cache would keep unwrapped data keys in a warm function.
func newEnvelope(ctx context.Context, d fnmain.Deps, cfg jwtstrategy.Config) (*envelope.Envelope, error) {
	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: kms.NewFromConfig(d.AWS), KeyID: cfg.KMSKeyARN})
	if err != nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, jwtstrategy.EnvKMSKeyARN, "the KMS key provider could not be set up", err)
	}
	env, err := envelope.New(envelope.Config{Provider: kp, WriteVersion: cfg.EnvelopeFormat})
	if err != nil {
		return nil, rotation.NewError(rotation.ClassConfiguration, "envelope", "the envelope could not be set up", err)
	}
	return env, nil
}
