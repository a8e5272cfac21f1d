package pgfixture_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/internal/pgfixture"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestProvisionedSecretsRotate(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	arn, err := m.RegisterNoopLambda(ctx, "pgfixture-noop")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pgfixture.Mode{pgfixture.Single, pgfixture.Clone, pgfixture.Pair} {
		t.Run(string(mode), func(t *testing.T) {
			f, err := pgfixture.Provision(ctx, pg, sm, mode, 3)
			t.Cleanup(func() {
				if f != nil {
					f.Cleanup(context.Background())
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			st, err := pgstrategy.New(pgstrategy.Config{Password: password.Policy{Length: 32, Exclude: password.DefaultExclude}, CABundlePEM: pg.CACertPEM, OutgoingGrace: time.Hour}, pgstrategy.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			eng, err := rotation.New(rotation.Config{Secrets: sm, Strategy: st, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			d := &driver.Driver{SM: sm, Invoke: eng, LambdaARN: arn}
			st2, err := pgfixture.RotateAll(ctx, d, f.SecretARNs, 2)
			if err != nil || st2.Rotations != 3 || st2.Failed != 0 {
				t.Fatalf("%+v: %v", st2, err)
			}
		})
	}
}
