package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// storeProbe is a strategy whose Create runs fn with the engine's Store.
type storeProbe struct {
	fn func(ctx context.Context, st rotation.Store) error
}

func (p *storeProbe) Kind() string { return "store-probe" }
func (p *storeProbe) Create(ctx context.Context, req *rotation.CreateRequest) (*rotation.CreateResponse, error) {
	if err := p.fn(ctx, req.Store); err != nil {
		return nil, err
	}
	return &rotation.CreateResponse{Value: []byte(`{"probe":true}`)}, nil
}
func (p *storeProbe) Set(context.Context, *rotation.SetRequest) (*rotation.SetResponse, error) {
	return nil, nil
}
func (p *storeProbe) Test(context.Context, *rotation.TestRequest) (*rotation.TestResponse, error) {
	return nil, nil
}

// storeAPI is what a store test needs of a backend.
type storeAPI interface {
	rotation.SecretsAPI
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
}

type storeBackend struct {
	name   string
	api    storeAPI
	lambda string
	exact  bool // creation times are distinct and ordered (the fake's clock)
}

var storeSeq atomic.Int64

// backends returns the real-rules fake (with a clock that advances a second
// per call) and moto.
func backends(t *testing.T) []storeBackend {
	var tick atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := smfake.New(smfake.WithClock(func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }))
	out := []storeBackend{{name: "fake", api: fake, lambda: "arn:aws:lambda:us-east-1:123456789012:function:probe", exact: true}}
	m := testenv.SharedMoto(t)
	cfg, err := m.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	arn, err := m.RegisterNoopLambda(context.Background(), "store-probe-rotation")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, storeBackend{name: "moto", api: secretsmanager.NewFromConfig(cfg), lambda: arn})
}

func (b storeBackend) secret(t *testing.T, value string) string {
	t.Helper()
	name := fmt.Sprintf("store/%s/%d-%d", b.name, time.Now().UnixNano(), storeSeq.Add(1))
	out, err := b.api.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func (b storeBackend) put(t *testing.T, arn, token, value string, stages ...string) {
	t.Helper()
	if _, err := b.api.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token), SecretString: aws.String(value), VersionStages: stages}); err != nil {
		t.Fatal(err)
	}
}

func (b storeBackend) current(t *testing.T, arn string) (string, string) {
	t.Helper()
	// By stage: moto's read without one can return the old version.
	out, err := b.api.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.VersionId), aws.ToString(out.SecretString)
}

// withStore runs fn inside a createSecret of a rotation of arn.
func (b storeBackend) withStore(t *testing.T, arn string, fn func(ctx context.Context, st rotation.Store) error) error {
	t.Helper()
	out, err := b.api.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{
		SecretId: aws.String(arn), RotationLambdaARN: aws.String(b.lambda),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rotation.New(rotation.Config{Secrets: b.api, Strategy: &storeProbe{fn: fn}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return eng.Handle(context.Background(), rotation.Event{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: aws.ToString(out.VersionId)})
}

const (
	tokA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	tokB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	tokC = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
)

func TestStoreVersionsListsEveryValueNewestFirstAndNeverThePlaceholder(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			arn := b.secret(t, "v1")
			first, _ := b.current(t, arn)
			b.put(t, arn, tokB, "v2")
			b.put(t, arn, tokC, "v3") // v1 loses AWSPREVIOUS: no label points at it
			var all, two []*rotation.Version
			err := b.withStore(t, arn, func(ctx context.Context, st rotation.Store) error {
				var err error
				if all, err = st.Versions(ctx, 0); err != nil {
					return err
				}
				two, err = st.Versions(ctx, 2)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range all {
				got = append(got, v.ID+"="+string(v.Value))
			}
			want := []string{tokC + "=v3", tokB + "=v2", first + "=v1"}
			if !b.exact {
				sort.Strings(got)
				sort.Strings(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Versions = %v, want %v (the empty AWSPENDING placeholder never listed)", got, want)
			}
			if len(two) != 2 || (b.exact && (two[0].ID != tokC || two[1].ID != tokB)) {
				t.Fatalf("Versions(2) returned %d versions", len(two))
			}
		})
	}
}

func TestSwapSecretIsACompareAndSwapOnAWSCURRENT(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			arn := b.secret(t, `{"rotated":true}`)
			shared := b.secret(t, "r0")
			base, _ := b.current(t, shared)
			err := b.withStore(t, arn, func(ctx context.Context, st rotation.Store) error {
				// Both writers read base; the first swap wins.
				if err := st.SwapSecret(ctx, shared, base, tokA, []byte("r0+a")); err != nil {
					return fmt.Errorf("first swap: %w", err)
				}
				err := st.SwapSecret(ctx, shared, base, tokB, []byte("r0+b"))
				if !errors.Is(err, rotation.ErrSecretMoved) || rotation.ClassOf(err) != rotation.ClassState {
					return fmt.Errorf("second swap over a stale read: want ErrSecretMoved, got %v", err)
				}
				var re *rotation.Error
				if !errors.As(err, &re) || !re.Retryable {
					return fmt.Errorf("a lost race must be retryable: %v", err)
				}
				// Retried swap that already took effect: done, nothing changes.
				if err := st.SwapSecret(ctx, shared, base, tokA, []byte("r0+a")); err != nil {
					return fmt.Errorf("retried first swap: %w", err)
				}
				// The loser reads again and merges.
				cur, err := st.GetSecret(ctx, shared, "", "")
				if err != nil || cur.ID != tokA {
					return fmt.Errorf("re-read: %v %v", cur, err)
				}
				return st.SwapSecret(ctx, shared, cur.ID, tokC, []byte("r0+a+b"))
			})
			if err != nil {
				t.Fatal(err)
			}
			if id, v := b.current(t, shared); id != tokC || v != "r0+a+b" {
				t.Fatalf("AWSCURRENT is %s=%q, want the merged value", id, v)
			}
		})
	}
}

func TestSwapSecretFinishesAWriteInterruptedBeforeTheLabelMove(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			arn := b.secret(t, `{"rotated":true}`)
			shared := b.secret(t, "r0")
			base, _ := b.current(t, shared)
			b.put(t, shared, tokA, "r1", rotation.StageSwap) // the crash came after PutSecretValue
			err := b.withStore(t, arn, func(ctx context.Context, st rotation.Store) error {
				if err := st.SwapSecret(ctx, shared, base, tokA, []byte("r2")); rotation.ClassOf(err) != rotation.ClassState {
					return fmt.Errorf("another value under a used token: want a state error, got %v", err)
				}
				return st.SwapSecret(ctx, shared, base, tokA, []byte("r1"))
			})
			if err != nil {
				t.Fatal(err)
			}
			if id, v := b.current(t, shared); id != tokA || v != "r1" {
				t.Fatalf("AWSCURRENT is %s=%q", id, v)
			}
		})
	}
}

func TestSwapSecretRefusesTheRotatedSecret(t *testing.T) {
	b := backends(t)[0]
	arn := b.secret(t, `{"rotated":true}`)
	base, _ := b.current(t, arn)
	err := b.withStore(t, arn, func(ctx context.Context, st rotation.Store) error {
		return st.SwapSecret(ctx, arn, base, tokA, []byte("x"))
	})
	if rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("want a configuration error, got %v", err)
	}
}
