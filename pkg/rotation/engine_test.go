package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// spy wraps a SecretsAPI to record calls and inject service answers.
type spy struct {
	rotation.SecretsAPI
	mu       sync.Mutex
	puts     []*secretsmanager.PutSecretValueInput
	updates  []*secretsmanager.UpdateSecretVersionStageInput
	onPut    func(in *secretsmanager.PutSecretValueInput) error
	onGetPen func(in *secretsmanager.GetSecretValueInput) (bool, error)
	// onUpdate, if set, runs after the real UpdateSecretVersionStage and may
	// replace its answer (a request applied whose answer was lost).
	onUpdate func(in *secretsmanager.UpdateSecretVersionStageInput, err error) error
	// beforeUpdate, if set, runs before the real UpdateSecretVersionStage.
	beforeUpdate func(in *secretsmanager.UpdateSecretVersionStageInput)
}

func (s *spy) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	s.mu.Lock()
	s.puts = append(s.puts, in)
	hook := s.onPut
	s.mu.Unlock()
	if hook != nil {
		if err := hook(in); err != nil {
			return nil, err
		}
	}
	return s.SecretsAPI.PutSecretValue(ctx, in, o...)
}

func (s *spy) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	s.mu.Lock()
	s.updates = append(s.updates, in)
	hook, before := s.onUpdate, s.beforeUpdate
	s.mu.Unlock()
	if before != nil {
		before(in)
	}
	out, err := s.SecretsAPI.UpdateSecretVersionStage(ctx, in, o...)
	if hook != nil {
		if herr := hook(in, err); herr != nil {
			return nil, herr
		}
	}
	return out, err
}

func (s *spy) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if s.onGetPen != nil && aws.ToString(in.VersionStage) == rotation.StagePending {
		if handled, err := s.onGetPen(in); handled {
			return nil, err
		}
	}
	return s.SecretsAPI.GetSecretValue(ctx, in, o...)
}

// moves returns the recorded UpdateSecretVersionStage calls for label.
func (s *spy) moves(label string) []*secretsmanager.UpdateSecretVersionStageInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*secretsmanager.UpdateSecretVersionStageInput
	for _, u := range s.updates {
		if aws.ToString(u.VersionStage) == label {
			out = append(out, u)
		}
	}
	return out
}

func withSpy(sp *spy) envOption {
	return func(c *rotation.Config) { sp.SecretsAPI = c.Secrets; c.Secrets = sp }
}

func wantClass(t *testing.T, err error, class rotation.Class) *rotation.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got success", class)
	}
	var re *rotation.Error
	if !errors.As(err, &re) {
		t.Fatalf("want *rotation.Error, got %T: %v", err, err)
	}
	if re.Class != class {
		t.Fatalf("want class %s, got %s: %v", class, re.Class, err)
	}
	return re
}

const initial = `{"n":0,"password":"initial-password-0"}`

func TestRotationDisabledIsATerminalStateError(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	// A version that exists, on a secret with no rotation configured.
	out, err := e.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(`{"n":9}`), VersionStages: []string{rotation.StagePending}})
	if err != nil {
		t.Fatal(err)
	}
	re := wantClass(t, e.step(arn, aws.ToString(out.VersionId), rotation.StepCreate), rotation.ClassState)
	if re.Retryable || !strings.Contains(re.Msg, "rotation is not enabled") {
		t.Fatalf("want a terminal 'not enabled' error, got %v (retryable %v)", re, re.Retryable)
	}
	if e.strategy.creates != 0 {
		t.Fatal("the strategy ran although rotation is disabled")
	}
}

func TestTokenThatIsNotAVersionIsATerminalStateError(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	e.placeholder(arn)
	re := wantClass(t, e.step(arn, "00000000-0000-4000-8000-000000000000", rotation.StepCreate), rotation.ClassState)
	if re.Retryable || !strings.Contains(re.Msg, "is not a version") {
		t.Fatalf("got %v", re)
	}
}

func TestTokenAlreadyCurrentSucceedsWithoutWorkOnEveryStep(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	e.placeholder(arn) // enables rotation
	var current string
	for id, st := range e.stages(arn) {
		if slices.Contains(st, rotation.StageCurrent) {
			current = id
		}
	}
	for _, step := range rotation.Steps {
		if err := e.step(arn, current, step); err != nil {
			t.Fatalf("%s on the AWSCURRENT token: %v", step, err)
		}
	}
	if e.strategy.creates != 0 || len(sp.puts) != 0 || len(sp.updates) != 0 || e.strategy.finished != 0 {
		t.Fatalf("work was done for an already-current token: creates=%d puts=%d updates=%d", e.strategy.creates, len(sp.puts), len(sp.updates))
	}
}

func TestTokenNotPendingIsATerminalStateError(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	first := e.placeholder(arn)
	// A second placeholder takes AWSPENDING away from the first token
	// (after the first is removed as the service would; moto refuses otherwise).
	if _, err := e.sm.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(`{"n":5}`), VersionStages: []string{rotation.StagePending}}); err != nil {
		t.Fatal(err)
	}
	re := wantClass(t, e.step(arn, first, rotation.StepSet), rotation.ClassState)
	if !strings.Contains(re.Msg, "is not AWSPENDING") {
		t.Fatalf("got %v", re)
	}
}

func TestMissingSecretIsAConfigurationError(t *testing.T) {
	e := newEnv(t)
	err := e.step("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", "00000000-0000-4000-8000-000000000000", rotation.StepCreate)
	wantClass(t, err, rotation.ClassConfiguration)
}

func TestCreateSecretFillsTheEmptyPlaceholderAsAWSPENDING(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	if err := e.step(arn, token, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	v, err := e.valueOf(arn, token)
	if err != nil || !strings.Contains(v, `"n":1`) {
		t.Fatalf("pending value %q, %v", v, err)
	}
	if len(sp.puts) != 1 || aws.ToString(sp.puts[0].ClientRequestToken) != token || !slices.Equal(sp.puts[0].VersionStages, []string{rotation.StagePending}) {
		t.Fatalf("want one PutSecretValue(token, [AWSPENDING]), got %+v", sp.puts)
	}
	if !slices.Contains(e.stages(arn)[token], rotation.StagePending) {
		t.Fatal("the new version is not AWSPENDING")
	}
}

func TestRetriedCreateSecretKeepsTheFirstValue(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	if err := e.step(arn, token, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	first, _ := e.valueOf(arn, token)
	// A cold environment: a new engine with an empty cache.
	e2 := newEnv(t)
	e2.strategy = e.strategy
	if err := e2.step(arn, token, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	if err := e.step(arn, token, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	again, _ := e.valueOf(arn, token)
	if again != first {
		t.Fatal("a retried createSecret changed the pending value")
	}
	if e.strategy.creates != 1 {
		t.Fatalf("the strategy built %d values; a retry must build none", e.strategy.creates)
	}
}

// The put races another attempt: the pending read said "no value", but by the
// time of the put the token holds a value. The real service answers
// ResourceExistsException (moto would overwrite: see internal/smfake).
func TestCreateSecretAcceptsResourceExistsOnlyForTheIdenticalValue(t *testing.T) {
	for _, tc := range []struct {
		name      string
		same      bool
		wantClass rotation.Class
	}{{"identical value is success", true, ""}, {"different value is a terminal error", false, rotation.ClassState}} {
		t.Run(tc.name, func(t *testing.T) {
			sp := &spy{}
			e := newEnv(t, withSpy(sp))
			arn := e.newSecret(initial)
			token := e.placeholder(arn)
			stale := true
			sp.onGetPen = func(*secretsmanager.GetSecretValueInput) (bool, error) {
				if stale {
					stale = false
					return true, &smtypes.ResourceNotFoundException{Message: aws.String("no value yet")}
				}
				return false, nil
			}
			sp.onPut = func(in *secretsmanager.PutSecretValueInput) error {
				// The other attempt's value lands first.
				other := aws.ToString(in.SecretString)
				if !tc.same {
					other = `{"n":1,"password":"someone-elses-value"}`
				}
				sp.onPut = nil
				if _, err := sp.SecretsAPI.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: in.SecretId, ClientRequestToken: in.ClientRequestToken, SecretString: aws.String(other), VersionStages: in.VersionStages}); err != nil {
					return err
				}
				return &smtypes.ResourceExistsException{Message: aws.String("You can't modify an existing version")}
			}
			err := e.step(arn, token, rotation.StepCreate)
			if tc.wantClass == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			re := wantClass(t, err, tc.wantClass)
			if re.Retryable || !strings.Contains(re.Msg, "reused with a different value") {
				t.Fatalf("got %v", re)
			}
			if strings.Contains(err.Error(), "someone-elses-value") {
				t.Fatal("the error leaks the stored value")
			}
		})
	}
}

func TestSetSecretOnAnEmptyPendingVersionIsARetryableStateError(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	re := wantClass(t, e.step(arn, token, rotation.StepSet), rotation.ClassState)
	if !re.Retryable || !strings.Contains(re.Msg, "createSecret has not completed") {
		t.Fatalf("got %v (retryable %v)", re, re.Retryable)
	}
}

func TestTestSecretOnAnEmptyPendingVersionRunsAConfigurationTestWithTheCurrentValue(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	if err := e.step(arn, token, rotation.StepTest); err != nil {
		t.Fatalf("configuration test: %v", err)
	}
	req := e.strategy.lastTest
	if req == nil || !req.ConfigTest || string(req.Pending.Value) != initial {
		t.Fatalf("the strategy was not handed the current value in config-test mode: %+v", req)
	}
	if ev := e.notes.events(); !slices.Equal(ev, []string{rotation.EventConfigTestPassed}) {
		t.Fatalf("notifications %v", ev)
	}
	if !strings.Contains(e.logs.String(), `"configTest":true`) {
		t.Fatal("the log line does not say it was a configuration test")
	}
	e.strategy.failTest = rotation.NewError(rotation.ClassAuthentication, "target:login", "refused", nil)
	wantClass(t, e.step(arn, token, rotation.StepTest), rotation.ClassAuthentication)
	if ev := e.notes.events(); ev[len(ev)-1] != rotation.EventConfigTestFailed {
		t.Fatalf("notifications %v", ev)
	}
}

func TestFinishSecretMovesAWSCURRENTAndAWSPREVIOUSFollows(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	var old string
	for id, st := range e.stages(arn) {
		if slices.Contains(st, rotation.StageCurrent) {
			old = id
		}
	}
	token := e.placeholder(arn)
	for _, s := range rotation.Steps {
		if err := e.step(arn, token, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	st := e.stages(arn)
	if !slices.Contains(st[token], rotation.StageCurrent) || !slices.Contains(st[old], rotation.StagePrevious) {
		t.Fatalf("labels after finish: %v", st)
	}
	moves := sp.moves(rotation.StageCurrent)
	if len(moves) != 1 || aws.ToString(moves[0].RemoveFromVersionId) != old || aws.ToString(moves[0].MoveToVersionId) != token {
		t.Fatalf("want one UpdateSecretVersionStage(AWSCURRENT, move %s, remove %s), got %+v", token, old, moves)
	}
	if len(sp.updates) != 2 || !slices.Contains(st[token], rotation.StageTested) {
		t.Fatalf("want the %s marker moved to the token by testSecret (one more UpdateSecretVersionStage): %v, %d updates", rotation.StageTested, st, len(sp.updates))
	}
	if e.strategy.finished != 1 {
		t.Fatal("the after-finish hook did not run once")
	}
	// Retried finish before the service closed the rotation (AWSPENDING
	// still on the token): no label moves, the idempotent hook runs again.
	if err := e.step(arn, token, rotation.StepFinish); err != nil {
		t.Fatal(err)
	}
	if len(sp.updates) != 2 || e.strategy.finished != 2 {
		t.Fatalf("retried finish: updates %d (want 2), hook runs %d (want 2)", len(sp.updates), e.strategy.finished)
	}
	// After the service removed AWSPENDING, a finish is a pure no-op.
	if _, err := e.sm.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(token)}); err != nil {
		t.Fatal(err)
	}
	if err := e.step(arn, token, rotation.StepFinish); err != nil {
		t.Fatal(err)
	}
	if len(sp.updates) != 2 || e.strategy.finished != 2 {
		t.Fatal("a finishSecret on a completed rotation did work")
	}
}

func TestAFailingAfterFinishHookIsRetriedByTheRetriedFinishAndThePromotionStands(t *testing.T) {
	e := newEnv(t)
	e.strategy.failFin = errors.New("hook broke with initial-password-0 inside")
	e.strategy.failFinN = 1
	arn := e.newSecret(initial)
	res, err := e.driver().Rotate(context.Background(), arn, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || e.strategy.finished != 2 {
		t.Fatalf("want the hook retried once by a second attempt: attempts %d, hook runs %d", res.Attempts, e.strategy.finished)
	}
	if e.strategy.creates != 1 {
		t.Fatal("the retry rebuilt the value")
	}
	if !slices.Contains(e.stages(arn)[res.Token], rotation.StageCurrent) {
		t.Fatal("promotion did not stand")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "after-finish action failed") || strings.Contains(logs, "initial-password-0") {
		t.Fatalf("want the redacted hook failure in the log; log:\n%s", logs)
	}
}

func TestAnAlwaysFailingAfterFinishHookFailsTheRotationButTheNewVersionStaysCurrent(t *testing.T) {
	e := newEnv(t)
	e.strategy.failFin = errors.New("hook down")
	arn := e.newSecret(initial)
	d := e.driver()
	d.Attempts = 3
	res, err := d.Rotate(context.Background(), arn, "")
	re := wantClass(t, err, rotation.ClassDependency)
	if !re.Retryable {
		t.Fatal("a hook failure must be retryable")
	}
	if e.strategy.finished != 3 {
		t.Fatalf("want the hook tried on every attempt, got %d", e.strategy.finished)
	}
	st := e.stages(arn)
	if !slices.Contains(st[res.Token], rotation.StageCurrent) || !e.strategy.tgt.ok(e.value(arn, rotation.StageCurrent)) {
		t.Fatalf("the promoted version must stay current and working: %v", st)
	}
}

func TestRotationTokenIsPassedToPutSecretValueAndNeverLogged(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	d := e.driver()
	d.RotationToken = "rotation-token-SENSITIVE-0123456789"
	if _, err := d.Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	if len(sp.puts) != 1 || aws.ToString(sp.puts[0].RotationToken) != d.RotationToken {
		t.Fatalf("PutSecretValue did not carry the RotationToken: %+v", sp.puts)
	}
	if strings.Contains(e.logs.String(), "SENSITIVE") || strings.Contains(e.metrics.String(), "SENSITIVE") {
		t.Fatal("the RotationToken reached the log")
	}
	ev := rotation.Event{Step: rotation.StepSet, SecretID: arn, ClientRequestToken: "t", RotationToken: d.RotationToken}
	if strings.Contains(ev.String(), "SENSITIVE") {
		t.Fatal("Event.String prints the RotationToken")
	}
}

// The happy path costs one call more than the bare contract: testSecret moves
// the ROTATION_TESTED marker (the proof finishSecret requires).
func TestAWarmRotationMakesEightSecretsManagerCallsAndAColdOneNine(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	count := func() map[string]int {
		c := &rotation.CallCounter{}
		d := e.driver()
		d.Wrap = func(ctx context.Context, _ int, _ rotation.Step) context.Context {
			return rotation.WithCallObserver(ctx, c.Observe)
		}
		if _, err := d.Rotate(context.Background(), arn, ""); err != nil {
			t.Fatal(err)
		}
		return c.Snapshot()
	}
	cold := count()
	warm := count()
	total := func(m map[string]int) int {
		n := 0
		for op, k := range m {
			if strings.HasPrefix(op, "secretsmanager:") {
				n += k
			}
		}
		return n
	}
	t.Logf("cold %v, warm %v", cold, warm)
	if total(cold) != 9 {
		t.Fatalf("cold rotation: want 9 Secrets Manager calls, got %d: %v", total(cold), cold)
	}
	if total(warm) != 8 {
		t.Fatalf("warm rotation: want 8 Secrets Manager calls (the current value cached by version id), got %d: %v", total(warm), warm)
	}
	if warm["secretsmanager:UpdateSecretVersionStage"] != 2 {
		t.Fatalf("want two label moves (ROTATION_TESTED in testSecret, AWSCURRENT in finishSecret): %v", warm)
	}
	if warm["secretsmanager:DescribeSecret"] != 4 {
		t.Fatalf("labels must be re-read on every step: %v", warm)
	}
}

func TestErrorsNeverCarryASecretValue(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	e.strategy.failTest = errors.New(`driver said: password "initial-password-0" rejected`)
	_, err := e.driver().Rotate(context.Background(), arn, "")
	if err == nil {
		t.Fatal("want failure")
	}
	if strings.Contains(err.Error(), "initial-password-0") || strings.Contains(e.logs.String(), "initial-password-0") {
		t.Fatalf("a secret reached an error or log: %v", err)
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("want the secret replaced by [REDACTED]: %v", err)
	}
	for _, n := range e.notes.notes {
		if strings.Contains(n.Message, "initial-password-0") {
			t.Fatal("a secret reached a notification")
		}
	}
}

func TestAStepThatRunsOutOfTimeFailsNamingTheStepAndTheCall(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	ctx, cancel := context.WithTimeout(context.Background(), rotation.Reserve+10*time.Millisecond)
	defer cancel()
	err := e.engine.Handle(ctx, rotation.Event{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token})
	re := wantClass(t, err, rotation.ClassTimeout)
	if re.Step != string(rotation.StepCreate) || re.Op != "secretsmanager:DescribeSecret" || !re.Retryable {
		t.Fatalf("want a retryable timeout naming createSecret and DescribeSecret, got %+v", re)
	}
}

func TestFailedStepsAreNotifiedWithStepAndClassAndSuccessesWithStartAndSuccess(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	if _, err := e.driver().Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	if ev := e.notes.events(); !slices.Equal(ev, []string{rotation.EventStarted, rotation.EventSucceeded}) {
		t.Fatalf("events of a good rotation: %v", ev)
	}
	e.strategy.failTest = rotation.NewError(rotation.ClassAuthentication, "target:login", "refused", nil)
	d := e.driver()
	d.Attempts = 1
	if _, err := d.Rotate(context.Background(), arn, ""); err == nil {
		t.Fatal("want failure")
	}
	last := e.notes.notes[len(e.notes.notes)-1]
	if last.Event != rotation.EventFailed || last.Step != "testSecret" || last.ErrorClass != "authentication" || last.Outcome != "failure" {
		t.Fatalf("failure notification %+v", last)
	}
}

func TestEmbeddedMetricFormatLinesCarryDurationAndFailureClass(t *testing.T) {
	e := newEnv(t, func(c *rotation.Config) { c.FunctionName = "app-dev-rotate" })
	arn := e.newSecret(initial)
	if _, err := e.driver().Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(e.metrics.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want one EMF line per step, got %d", len(lines))
	}
	for _, l := range lines {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name, Unit string }
				}
			} `json:"_aws"`
			FunctionName string
			Kind         string
			Step         string
			StepDuration *float64
			StepFailures *int
		}
		if err := json.Unmarshal([]byte(l), &doc); err != nil {
			t.Fatalf("not JSON: %v: %s", err, l)
		}
		if len(doc.AWS.CloudWatchMetrics) != 1 || doc.AWS.CloudWatchMetrics[0].Namespace == "" || doc.FunctionName != "app-dev-rotate" || doc.Kind != "test" || doc.Step == "" || doc.StepDuration == nil || doc.StepFailures == nil || *doc.StepFailures != 0 {
			t.Fatalf("bad EMF line %s", l)
		}
	}
}

func TestVersionValuesAreReadOncePerEnvironment(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	c := &rotation.CallCounter{}
	d := e.driver()
	d.Wrap = func(ctx context.Context, _ int, _ rotation.Step) context.Context {
		return rotation.WithCallObserver(ctx, c.Observe)
	}
	if _, err := d.Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	// current once, pending once (ResourceNotFound before the put); after
	// the put, the pending value is cached; set/test/finish read nothing.
	if n := c.Count("secretsmanager:GetSecretValue"); n != 2 {
		t.Fatalf("want 2 GetSecretValue calls in a cold rotation, got %d", n)
	}
}

func TestMalformedEventsAreTerminalInputErrors(t *testing.T) {
	e := newEnv(t)
	for name, payload := range map[string]string{
		"not JSON":        `{"Step":`,
		"array":           `[]`,
		"unknown step":    `{"Step":"dropSecret","SecretId":"s","ClientRequestToken":"t"}`,
		"missing token":   `{"Step":"createSecret","SecretId":"s"}`,
		"missing secret":  `{"Step":"createSecret","ClientRequestToken":"t"}`,
		"token too long":  `{"Step":"createSecret","SecretId":"s","ClientRequestToken":"` + strings.Repeat("a", 65) + `"}`,
		"control char":    `{"Step":"createSecret","SecretId":"s\u0000x","ClientRequestToken":"t"}`,
		"number field":    `{"Step":"createSecret","SecretId":5,"ClientRequestToken":"t"}`,
		"trailing object": `{"Step":"createSecret","SecretId":"s","ClientRequestToken":"t"}{}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.engine.Invoke(context.Background(), []byte(payload))
			re := wantClass(t, err, rotation.ClassInput)
			if re.Retryable {
				t.Fatal("an input error must be terminal")
			}
		})
	}
}

func TestAPanickingStrategyFailsTheStepWithARedactedMessage(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	e.strategy.createFn = func(req *rotation.CreateRequest) ([]byte, error) {
		panic("cannot parse " + string(req.Current.Value))
	}
	err := e.step(arn, token, rotation.StepCreate)
	re := wantClass(t, err, rotation.ClassDependency)
	if strings.Contains(err.Error(), "initial-password-0") || !strings.Contains(re.Msg, "panicked") {
		t.Fatalf("got %v", err)
	}
	if v, _ := e.valueOf(arn, token); v != "" {
		t.Fatal("a panicking createSecret stored a value")
	}
}
