// Package crashtest is the crash-point harness every rotation function's
// tests reuse. It runs a full rotation once to count the external calls made
// through rotation.Call (Secrets Manager, database, KMS, HTTP), then for every
// call N and both phases (before the call, and after it took effect) it fails
// call N in the first attempt, checks that the credential that was current
// still works, lets the rotation run again as the service would, and checks
// the invariants: the rotation converges, exactly one version is AWSCURRENT,
// the AWSCURRENT value passes the strategy's own check, no version that had a
// value was changed, and AWSPENDING sits on the current version or on none.
package crashtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// SecretsReader is what the harness needs to inspect a secret's versions.
type SecretsReader interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Harness describes one function's rotation for the crash-point run.
type Harness struct {
	// Setup makes a fresh secret (and its target state) for one run and
	// returns its id and a driver that rotates it in-process. Each failure
	// point gets its own Setup.
	Setup func(t *testing.T) (secretID string, d *driver.Driver)
	// SM reads the secret's versions.
	SM SecretsReader
	// Check proves that a value works in the target system (logs in,
	// verifies, …). It is the strategy's own test.
	Check func(ctx context.Context, secretID string, value []byte) error
	// During, if set, runs after the failed first attempt, before the
	// retry, with the value that is AWSCURRENT at that moment; use it for
	// function-specific invariants (e.g. "the old credential still works").
	During func(ctx context.Context, t *testing.T, secretID string, current []byte)
	// Ops, if set, restricts failure points to ops with one of these
	// prefixes ("secretsmanager:", "postgres:", "kms:").
	Ops []string
}

// ErrInjected is the cause of every injected failure.
var ErrInjected = errors.New("injected crash")

// Point names one failure point.
type Point struct {
	N     int // 1-based index among the counted calls
	Op    string
	Phase rotation.Phase
}

func (p Point) String() string {
	ph := "before"
	if p.Phase == rotation.After {
		ph = "after"
	}
	return fmt.Sprintf("%02d-%s-%s", p.N, strings.ReplaceAll(p.Op, ":", "."), ph)
}

// Run runs the harness and returns the failure points it exercised.
func Run(t *testing.T, h Harness) []Point {
	t.Helper()
	points, err := h.Points(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		t.Run(p.String(), func(t *testing.T) {
			if err := h.Exercise(t, p); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Logf("crashtest: %d failure points", len(points))
	return points
}

// Points runs a clean rotation and returns every failure point of it.
func (h Harness) Points(t *testing.T) ([]Point, error) {
	ops, err := h.countCalls(t)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, errors.New("crashtest: the clean rotation made no counted calls")
	}
	var points []Point
	for i, c := range ops {
		if !h.selected(c.op) {
			continue
		}
		points = append(points, Point{N: i + 1, Op: c.op, Phase: rotation.Before})
		if c.succeeded { // a call that failed had no effect to crash after
			points = append(points, Point{N: i + 1, Op: c.op, Phase: rotation.After})
		}
	}
	return points, nil
}

func (h Harness) selected(op string) bool {
	if len(h.Ops) == 0 {
		return true
	}
	for _, p := range h.Ops {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return false
}

// countCalls runs a clean rotation and records the ops in call order.
type call struct {
	op        string
	succeeded bool
}

func (h Harness) countCalls(t *testing.T) ([]call, error) {
	id, d := h.Setup(t)
	var mu sync.Mutex
	var ops []call
	hook := rotation.FaultHook(func(op string, ph rotation.Phase) error {
		mu.Lock()
		defer mu.Unlock()
		if ph == rotation.Before {
			ops = append(ops, call{op: op})
		} else {
			ops[len(ops)-1].succeeded = true
		}
		return nil
	})
	d.Wrap = chain(d.Wrap, func(ctx context.Context, _ int, _ rotation.Step) context.Context {
		return rotation.WithFaultHook(ctx, hook)
	})
	if _, err := d.Rotate(context.Background(), id, ""); err != nil {
		return nil, fmt.Errorf("crashtest: the clean rotation failed: %w", err)
	}
	return ops, h.checkInvariants(id, nil)
}

func chain(prev, next func(context.Context, int, rotation.Step) context.Context) func(context.Context, int, rotation.Step) context.Context {
	if prev == nil {
		return next
	}
	return func(ctx context.Context, a int, s rotation.Step) context.Context { return next(prev(ctx, a, s), a, s) }
}

// Exercise runs one failure point and returns the first broken invariant.
// t is used only for Setup and During.
func (h Harness) Exercise(t *testing.T, p Point) error {
	ctx := context.Background()
	id, d := h.Setup(t)
	before, err := h.snapshot(id)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	n := 0
	fired := false
	hook := rotation.FaultHook(func(op string, ph rotation.Phase) error {
		mu.Lock()
		defer mu.Unlock()
		if fired {
			return nil
		}
		if ph == rotation.Before {
			n++
		}
		if n == p.N && ph == p.Phase {
			fired = true
			return fmt.Errorf("%w at %s", ErrInjected, p)
		}
		return nil
	})
	d.Wrap = chain(d.Wrap, func(ctx context.Context, _ int, _ rotation.Step) context.Context {
		return rotation.WithFaultHook(ctx, hook)
	})
	// First attempt only: the service gives up or retries later.
	d.Attempts = 1
	res, err := d.Rotate(ctx, id, "")
	mu.Lock()
	didFire := fired
	mu.Unlock()
	if !didFire {
		return fmt.Errorf("the failure point %s was never reached (the rotation makes fewer calls than counted); rotation error: %v", p, err)
	}
	// Whatever happened, the AWSCURRENT credential must work now.
	cur, cerr := h.currentValue(id)
	if cerr != nil {
		return cerr
	}
	if err := h.Check(ctx, id, cur); err != nil {
		return fmt.Errorf("after a failure at %s the AWSCURRENT value no longer works: %w", p, err)
	}
	if h.During != nil {
		h.During(ctx, t, id, cur)
	}
	if err != nil {
		// The service retries the whole rotation with the same token.
		d.Attempts = 3
		if res == nil {
			return fmt.Errorf("the rotation could not start: %w", err)
		}
		if _, err := d.Resume(ctx, id, res.Token); err != nil {
			return fmt.Errorf("the rotation did not converge after a failure at %s: %w", p, err)
		}
	}
	return h.checkInvariants(id, before)
}

// currentValue reads the AWSCURRENT value by stage.
func (h Harness) currentValue(id string) ([]byte, error) {
	out, err := h.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		return nil, fmt.Errorf("read AWSCURRENT: %w", err)
	}
	return []byte(aws.ToString(out.SecretString)), nil
}

// snapshot returns every version's value by id (versions without a value are left out).
func (h Harness) snapshot(id string) (map[string]string, error) {
	ctx := context.Background()
	d, err := h.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	vals := map[string]string{}
	for vid := range d.VersionIdsToStages {
		out, err := h.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionId: aws.String(vid)})
		if err != nil {
			continue // the empty placeholder
		}
		if s := aws.ToString(out.SecretString); s != "" {
			vals[vid] = s
		}
	}
	return vals, nil
}

func (h Harness) checkInvariants(id string, before map[string]string) error {
	ctx := context.Background()
	d, err := h.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	var currents, pendings []string
	for vid, st := range d.VersionIdsToStages {
		if slices.Contains(st, rotation.StageCurrent) {
			currents = append(currents, vid)
		}
		if slices.Contains(st, rotation.StagePending) {
			pendings = append(pendings, vid)
		}
	}
	sort.Strings(currents)
	if len(currents) != 1 {
		return fmt.Errorf("want exactly one AWSCURRENT version, have %v", currents)
	}
	if len(pendings) > 1 || (len(pendings) == 1 && pendings[0] != currents[0]) {
		return fmt.Errorf("AWSPENDING must be on the current version or none; it is on %v (current %s)", pendings, currents[0])
	}
	cur, err := h.currentValue(id)
	if err != nil {
		return err
	}
	if err := h.Check(ctx, id, cur); err != nil {
		return fmt.Errorf("the AWSCURRENT value does not pass the strategy's check: %w", err)
	}
	if before != nil {
		after, err := h.snapshot(id)
		if err != nil {
			return err
		}
		for vid, v := range before {
			if a, ok := after[vid]; ok && a != v {
				return fmt.Errorf("version %s had a value and was changed", vid)
			}
		}
		if _, ok := before[currents[0]]; ok {
			return fmt.Errorf("the rotation did not move AWSCURRENT to a new version")
		}
	}
	return nil
}
