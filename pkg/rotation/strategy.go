package rotation

import (
	"context"
	"errors"
	"time"
)

// Strategy makes one kind of secret rotate: it knows the target system (a
// database, a key registry) and nothing about labels, scheduling or storage of
// the rotated secret, which are the engine's. Each verb takes one request
// struct and returns one response struct, so fields can be added later without
// breaking an implementation. A nil response means "nothing to report".
//
// Every verb may be called again after a crash at any point, and with the same
// request: implementations must be idempotent. Every call a strategy makes to
// the outside (database, KMS, HTTP, other secrets) goes through Call, so it
// gets a timeout from the step's budget and can be counted and fault-injected.
type Strategy interface {
	// Kind names the strategy ("postgres", "jwt", "apikey", "webhook") in logs
	// and notifications.
	Kind() string

	// Create builds the pending value from the current one. It is called only
	// when the pending version has no value yet; the engine stores the result
	// under the rotation's token, so a retried createSecret keeps the first value.
	Create(ctx context.Context, req *CreateRequest) (*CreateResponse, error)

	// Set makes the pending value real in the target system. It must succeed
	// if the target already has it (a retried setSecret).
	Set(ctx context.Context, req *SetRequest) (*SetResponse, error)

	// Test proves the pending value works. In a configuration test
	// (req.ConfigTest) the pending version is empty and req.Pending holds the
	// current value instead: prove the configuration reaches the target.
	Test(ctx context.Context, req *TestRequest) (*TestResponse, error)
}

// Finisher is an optional hook a Strategy implements to act after the engine
// has moved AWSCURRENT to the new version (expire the outgoing database user,
// mark the previous API key as retiring). It must be idempotent. The
// promotion stands whatever the hook does. A failing hook fails finishSecret
// as a retryable error (rotation.failed): the service retries the rotation,
// and the retried finishSecret — the token already AWSCURRENT, AWSPENDING
// still on it — runs the hook again, until it succeeds or the service gives
// up. That retried run is not a second promotion: it publishes no
// rotation.succeeded (only rotation.failed or rotation.warning when it fails
// or warns) and logs the outcome "finish-retried".
type Finisher interface {
	AfterFinish(ctx context.Context, req *FinishRequest) (*FinishResponse, error)
}

// SecretInfo describes the rotated secret, from DescribeSecret.
type SecretInfo struct {
	ARN  string
	Name string
	Tags map[string]string
	// RotationInterval is the schedule's AutomaticallyAfterDays as a duration,
	// zero when the schedule is an expression the engine does not interpret.
	RotationInterval time.Duration
}

// Version is one version of a secret with its value.
type Version struct {
	ID      string
	Stages  []string
	Value   SecretValue
	Created time.Time
}

// Store is the narrow reader and writer the engine hands a strategy. It
// reaches the rotated secret's earlier versions and *other* secrets (a master
// secret, a verifier secret, a public JWKS secret); it never moves the
// rotated secret's labels.
type Store interface {
	// Previous returns the rotated secret's AWSPREVIOUS version, or nil if none.
	Previous(ctx context.Context) (*Version, error)
	// Versions returns up to max of the rotated secret's versions that hold
	// a value, labelled or not, newest first (by creation time; ties by id),
	// with their values: for a strategy that must find which stored
	// credential the target still accepts, such as a password no label points
	// at any more after an operator removed a failed rotation's AWSPENDING.
	// max <= 0 means DefaultVersionLimit; more than MaxVersionLimit is cut
	// to it. Secrets Manager keeps unlabelled versions for a while only
	// (about 100 versions, none younger than 24 hours pruned), so an old
	// enough value may be gone. Costs one ListSecretVersionIds per 100
	// versions and one GetSecretValue per returned version not yet cached.
	Versions(ctx context.Context, max int) ([]*Version, error)
	// GetSecret reads another secret by version id, or by stage when
	// versionID is empty (stage defaults to AWSCURRENT). Nil, nil when the
	// secret or version does not exist or has no value.
	GetSecret(ctx context.Context, secretID, versionID, stage string) (*Version, error)
	// PutSecret writes a new AWSCURRENT version of another secret under
	// token (ClientRequestToken), whatever version is current: the last
	// writer wins. Writing the same value under the same token again
	// succeeds; a different value under a used token is a state error. A
	// secret that several rotations read, modify and write must use
	// SwapSecret instead.
	PutSecret(ctx context.Context, secretID, token string, value []byte) error
	// SwapSecret is a compare-and-swap on another secret: it writes value
	// under token (ClientRequestToken) with the private label StageSwap and
	// then moves AWSCURRENT onto it only if AWSCURRENT is still on version
	// base, the version the caller read and derived value from (base "": the
	// secret had no value). If another writer moved AWSCURRENT meanwhile it
	// returns an error for which errors.Is(err, ErrSecretMoved) holds (class
	// state, retryable), AWSCURRENT stays where that writer put it, and the
	// caller reads again, merges and swaps again. Retrying the same swap
	// (same base, token and value) after a crash at any point succeeds; a
	// different value under a used token is a state error. The rotated
	// secret itself is refused.
	SwapSecret(ctx context.Context, secretID, base, token string, value []byte) error
}

// Version listing bounds of Store.Versions.
const (
	DefaultVersionLimit = 10
	MaxVersionLimit     = 100
)

// StageSwap is the private staging label Store.SwapSecret puts on the
// version it writes, so that the version is not an unlabelled (deprecated)
// one while it waits for AWSCURRENT. It stays on the last version written
// that way; never set it by hand.
const StageSwap = "ROTATION_SWAP"

// ErrSecretMoved is the cause of Store.SwapSecret's error when AWSCURRENT
// was no longer on the version the caller read.
var ErrSecretMoved = errors.New("AWSCURRENT moved to another version since it was read")

// Report is what every verb may return besides its result: warnings that the
// log and the notification carry, and non-secret details.
type Report struct {
	Warnings []string
	Details  map[string]string
}

// CreateRequest is the input of Strategy.Create.
type CreateRequest struct {
	Secret  SecretInfo
	Token   string   // the new version's id
	Current *Version // the AWSCURRENT version, with its value
	Store   Store
	Redact  *Redactor // register every generated secret here
	Now     time.Time
}

// CreateResponse carries the new pending value. Value is a SecretValue, so a
// logged or printed response does not show it; a []byte is assignable to it.
type CreateResponse struct {
	Value SecretValue
	Report
}

// SetRequest is the input of Strategy.Set.
type SetRequest struct {
	Secret  SecretInfo
	Token   string
	Current *Version
	Pending *Version
	Store   Store
	Redact  *Redactor
	Now     time.Time
}

// SetResponse is the output of Strategy.Set.
type SetResponse struct{ Report }

// TestRequest is the input of Strategy.Test.
type TestRequest struct {
	Secret     SecretInfo
	Token      string
	Current    *Version
	Pending    *Version // in a configuration test, the current version
	ConfigTest bool
	Store      Store
	Redact     *Redactor
	Now        time.Time
}

// TestResponse is the output of Strategy.Test.
type TestResponse struct{ Report }

// FinishRequest is the input of Finisher.AfterFinish.
type FinishRequest struct {
	Secret   SecretInfo
	Token    string
	Current  *Version // the version just promoted
	Previous *Version // the version that was current before, now AWSPREVIOUS
	Store    Store
	Redact   *Redactor
	Now      time.Time
}

// FinishResponse is the output of Finisher.AfterFinish.
type FinishResponse struct{ Report }
