// Package smfake is an in-memory AWS Secrets Manager for tests that follows
// the real service's rules where moto does not: the empty AWSPENDING
// placeholder made by RotateSecret, PutSecretValue idempotency on the
// ClientRequestToken, how staging labels move (AWSPREVIOUS follows
// AWSCURRENT; RemoveFromVersionId required and checked), the
// "previous rotation isn't complete" check, deprecated versions dropping
// out of DescribeSecret, and which versions ListSecretVersionIds lists (only
// those with a value; unlabelled ones on request; paged by MaxResults).
//
// A *Fake has the same method signatures as *secretsmanager.Client for the
// operations the rotation suite uses, and returns the SDK's own error types
// (github.com/aws/aws-sdk-go-v2/service/secretsmanager/types) wrapped in a
// *smithy.OperationError, so errors.As in callers behaves as against AWS.
// conformance_test.go runs every rule against both the fake and moto.
//
// smfake owns no product logic and never puts a secret value in an error.
package smfake

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Staging labels the service itself manages.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// Limits the real service enforces (Secrets Manager quotas).
const (
	MaxLabelsPerSecret = 20  // staging labels attached across all versions
	MaxVersions        = 100 // versions kept; deprecated ones older than 24 h are pruned first
)

// API is the part of the Secrets Manager client that both *Fake and
// *secretsmanager.Client provide.
type API interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error)
}

var (
	_ API = (*secretsmanager.Client)(nil)
	_ API = (*Fake)(nil)
)

// Fake is an in-memory Secrets Manager. The zero value is not usable; call
// New. All methods are safe for concurrent use.
type Fake struct {
	// Intercept, if set, runs at the start of every API call (outside the
	// fake's lock, so it may call the fake itself) with the operation name,
	// e.g. "PutSecretValue", and the input. A non-nil error is returned as
	// the call's result and the call changes nothing.
	Intercept func(ctx context.Context, op string, in any) error

	mu      sync.Mutex
	region  string
	account string
	now     func() time.Time
	secrets map[string]*secret // by ARN
	calls   map[string]int
}

// Option configures New.
type Option func(*Fake)

// WithClock makes the fake read time from now (version dates, deletion dates,
// the 24-hour pruning rule).
func WithClock(now func() time.Time) Option { return func(f *Fake) { f.now = now } }

// WithAccount sets the region and account used in ARNs (default us-east-1,
// 123456789012, as moto).
func WithAccount(region, account string) Option {
	return func(f *Fake) { f.region, f.account = region, account }
}

// New returns an empty fake.
func New(opts ...Option) *Fake {
	f := &Fake{
		region:  "us-east-1",
		account: "123456789012",
		now:     time.Now,
		secrets: map[string]*secret{},
		calls:   map[string]int{},
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// serve runs one API call as the service would: it counts the call, honours a
// cancelled context and Intercept, rejects a missing required field the way
// the SDK's validation does, and runs fn under the lock, wrapping its error
// in the operation error the SDK returns.
func serve[In, Out any](f *Fake, ctx context.Context, op string, in *In, present func(*In) bool, fields []string, fn func(*In) (*Out, error)) (*Out, error) {
	if err := f.begin(ctx, op, in); err != nil {
		return nil, err
	}
	if in == nil || !present(in) {
		return nil, opErr(op, required(op, fields...))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out, err := fn(in)
	if err != nil {
		return nil, opErr(op, err)
	}
	return out, nil
}

// begin counts the call, honours a cancelled context and runs Intercept.
func (f *Fake) begin(ctx context.Context, op string, in any) error {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return opErr(op, err)
	}
	if f.Intercept != nil {
		if err := f.Intercept(ctx, op, in); err != nil {
			return err
		}
	}
	return nil
}

// find resolves a SecretId: the full ARN, the name, or the ARN without its
// random six-character suffix. Caller holds f.mu.
func (f *Fake) find(id *string) (*secret, error) {
	if id == nil || *id == "" {
		return nil, errNotFound("Secrets Manager can't find the specified secret.")
	}
	if s, ok := f.secrets[*id]; ok {
		return s, nil
	}
	for _, s := range f.secrets {
		if s.name == *id || (len(s.arn) > 7 && s.arn[:len(s.arn)-7] == *id) {
			return s, nil
		}
	}
	return nil, errNotFound("Secrets Manager can't find the specified secret.")
}

// findLive is find for an operation that reads or changes a value or its
// labels, which a secret scheduled for deletion refuses. Caller holds f.mu.
func (f *Fake) findLive(id *string) (*secret, error) {
	s, err := f.find(id)
	if err != nil {
		return nil, err
	}
	if s.deletion != nil {
		return nil, errMarkedDeleted()
	}
	return s, nil
}
