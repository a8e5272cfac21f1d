package smfake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func newEnv(t *testing.T, f *Fake) *env {
	t.Helper()
	return (&env{ctx: context.Background(), api: f, lambda: "arn:aws:lambda:us-east-1:123456789012:function:r"}).fresh("unit")
}

func TestErrorsAreSDKTypesInsideAnOperationError(t *testing.T) {
	f := New()
	_, err := f.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("want *types.ResourceNotFoundException, got %T %v", err, err)
	}
	var oe *smithy.OperationError
	if !errors.As(err, &oe) || oe.Operation() != "GetSecretValue" || oe.Service() != "Secrets Manager" {
		t.Fatalf("want a smithy.OperationError for Secrets Manager GetSecretValue, got %v", err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ResourceNotFoundException" {
		t.Fatalf("ErrorCode: %v", err)
	}
}

func TestMissingRequiredParameterIsAValidationError(t *testing.T) {
	f := New()
	_, err := f.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretString: aws.String("x")})
	var ip smithy.InvalidParamsError
	if !errors.As(err, &ip) {
		t.Fatalf("want smithy.InvalidParamsError, got %T %v", err, err)
	}
}

func TestErrorsNeverCarryTheSecretValue(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	const v1, v2 = "s3cr3t-value-one", "s3cr3t-value-two"
	if err := e.create(tA, v1); err != nil {
		t.Fatal(err)
	}
	if err := e.put(tB, v2, StagePending); err != nil {
		t.Fatal(err)
	}
	errs := []error{
		e.put(tB, v2+"x", StagePending),
		e.put(tA, v1+"x"),
		e.move(StageCurrent, tB, ""),
		e.create(tC, v1),
	}
	_, err := e.get(tA, StagePending)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		if s := err.Error(); strings.Contains(s, "s3cr3t") {
			t.Fatalf("error text holds a secret value: %s", s)
		}
	}
}

func TestRemovePendingEndsARotationAndRecordsLastRotatedDate(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.rotated(); err != nil {
		t.Fatal(err)
	}
	if err := f.RemovePending(e.name); err != nil {
		t.Fatal(err)
	}
	if err := e.wantStages(stageMap{tA: {StagePrevious}, tB: {StageCurrent}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.describe()
	if err != nil {
		t.Fatal(err)
	}
	if d.LastRotatedDate == nil {
		t.Fatal("no LastRotatedDate after a completed rotation")
	}
	if err := e.rotate(tC); err != nil {
		t.Fatalf("next rotation: %v", err)
	}
}

func TestRemovePendingDropsAnAbandonedPlaceholder(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rotate(tB); err != nil {
		t.Fatal(err)
	}
	if err := f.RemovePending(e.name); err != nil {
		t.Fatal(err)
	}
	vs, err := f.Versions(e.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].ID != tA || !vs[0].HasValue {
		t.Fatalf("versions %+v; want only %s", vs, tA)
	}
	if d, _ := e.describe(); d.LastRotatedDate != nil {
		t.Fatal("an abandoned rotation recorded LastRotatedDate")
	}
}

func TestVersionsReportsThePlaceholderWithoutAValue(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rotate(tB); err != nil {
		t.Fatal(err)
	}
	vs, err := f.Versions(e.name)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[1].ID != tB || vs[1].HasValue || len(vs[1].Stages) != 1 || vs[1].Stages[0] != StagePending {
		t.Fatalf("versions %+v", vs)
	}
	st, err := f.Stages(e.name)
	if err != nil || len(st) != 2 {
		t.Fatalf("Stages: %v %v", st, err)
	}
}

func TestRotateSecretRepeatedWithTheSameTokenReturnsTheSameRotation(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rotate(tB); err != nil {
		t.Fatal(err)
	}
	if err := e.rotate(tB); err != nil {
		t.Fatalf("a retried RotateSecret with the same token: %v", err)
	}
	if err := e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}); err != nil {
		t.Fatal(err)
	}
}

func TestRotateSecretKeepsTheConfiguredLambda(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.rotated(); err != nil {
		t.Fatal(err)
	}
	if err := f.RemovePending(e.name); err != nil {
		t.Fatal(err)
	}
	// No RotationLambdaARN this time: the configured one is used.
	if _, err := f.RotateSecret(e.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(e.name), ClientRequestToken: aws.String(tC)}); err != nil {
		t.Fatal(err)
	}
}

func TestAWSCURRENTCannotBeRemovedWithoutMovingIt(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	err := e.move(StageCurrent, "", tA)
	if !isErr[*types.InvalidParameterException](err) {
		t.Fatalf("want InvalidParameterException, got %v", err)
	}
}

func TestDeprecatedVersionsOlderThanADayArePrunedAtTheVersionLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := New(WithClock(func() time.Time { return now }))
	e := newEnv(t, f)
	if err := e.create(tA, "v0"); err != nil {
		t.Fatal(err)
	}
	tok := func(i int) string { return fmt.Sprintf("%08d-0000-4000-8000-000000000000", i) }
	for i := 1; i < MaxVersions; i++ {
		if err := e.put(tok(i), fmt.Sprint("v", i)); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	// 100 versions, all created "now": the 101st within 24 h is refused.
	if err := e.put(tok(1000), "over"); !isErr[*types.LimitExceededException](err) {
		t.Fatalf("101st version within a day: want LimitExceededException, got %v", err)
	}
	now = now.Add(25 * time.Hour)
	if err := e.put(tok(1000), "over"); err != nil {
		t.Fatalf("after a day deprecated versions should be pruned: %v", err)
	}
	vs, _ := f.Versions(e.name)
	if len(vs) > MaxVersions {
		t.Fatalf("%d versions kept", len(vs))
	}
	if err := e.wantValue("", StagePrevious, fmt.Sprint("v", MaxVersions-1)); err != nil {
		t.Fatal(err)
	}
}

func TestInterceptFailsACallWithoutChangingState(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("injected")
	f.Intercept = func(_ context.Context, op string, _ any) error {
		if op == "PutSecretValue" {
			return boom
		}
		return nil
	}
	if err := e.put(tB, "v2"); !errors.Is(err, boom) {
		t.Fatalf("want the injected error, got %v", err)
	}
	f.Intercept = nil
	if err := e.wantStages(stageMap{tA: {StageCurrent}}); err != nil {
		t.Fatal(err)
	}
}

func TestCallsCountsEveryOperation(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	_ = e.create(tA, "v1")
	_, _ = e.get("", "")
	_, _ = e.get("", StagePending) // failed calls count too
	if got := f.Calls("GetSecretValue"); got != 2 {
		t.Fatalf("GetSecretValue calls = %d, want 2", got)
	}
	if got := f.CallCounts()["CreateSecret"]; got != 1 {
		t.Fatalf("CreateSecret calls = %d", got)
	}
	f.ResetCalls()
	if f.Calls("GetSecretValue") != 0 {
		t.Fatal("ResetCalls kept counts")
	}
}

func TestCancelledContextFailsTheCall(t *testing.T) {
	f := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestOutputsDoNotAliasTheFakesState(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	out, err := f.GetSecretValue(e.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.name)})
	if err != nil {
		t.Fatal(err)
	}
	out.VersionStages[0] = "MUTATED"
	d, _ := e.describe()
	d.VersionIdsToStages[tA][0] = "MUTATED"
	if err := e.wantStages(stageMap{tA: {StageCurrent}}); err != nil {
		t.Fatal(err)
	}
}

// Concurrent createSecret retries racing on one token: exactly one value
// wins, every racer either succeeds with that value or gets
// ResourceExistsException, and the label invariants hold.
func TestConcurrentPutsUnderOneTokenKeepOneValue(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.create(tA, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := e.rotate(tB); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.put(tB, fmt.Sprint("candidate-", i%4), StagePending)
		}(i)
	}
	wg.Wait()
	winner, err := e.get(tB, StagePending)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range results {
		mine := fmt.Sprint("candidate-", i%4)
		switch {
		case err == nil && mine != winner:
			t.Fatalf("racer %d put %q and succeeded, but the version holds %q", i, mine, winner)
		case err != nil && !isErr[*types.ResourceExistsException](err):
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if err := e.wantStages(stageMap{tA: {StageCurrent}, tB: {StagePending}}); err != nil {
		t.Fatal(err)
	}
}

func TestRemovingAWSPENDINGFromTheCurrentVersionRecordsTheRotation(t *testing.T) {
	f := New()
	e := newEnv(t, f)
	if err := e.rotated(); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.describe(); d.LastRotatedDate != nil {
		t.Fatal("LastRotatedDate set before the rotation ended")
	}
	if err := e.move(StagePending, "", tB); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.describe(); d.LastRotatedDate == nil {
		t.Fatal("no LastRotatedDate after AWSPENDING left the new AWSCURRENT version")
	}
}
