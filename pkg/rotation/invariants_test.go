package rotation_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func sameStages(a, b map[string][]string) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool {
		x, y = slices.Clone(x), slices.Clone(y)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(x, y)
	})
}

func count(notes []string, event string) int {
	n := 0
	for _, e := range notes {
		if e == event {
			n++
		}
	}
	return n
}

// finishSecret straight after RotateSecret used to move AWSCURRENT to the
// empty placeholder.
func TestFinishSecretRefusesTheEmptyPlaceholderAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	before := e.stages(arn)
	err := e.step(arn, token, rotation.StepFinish)
	re := wantClass(t, err, rotation.ClassState)
	if !strings.Contains(re.Error(), "has no value") || !strings.Contains(re.Error(), "nothing was changed") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
	if after := e.stages(arn); !sameStages(before, after) {
		t.Fatalf("labels changed: before %v, after %v", before, after)
	}
	if e.value(arn, rotation.StageCurrent) != initial {
		t.Fatal("AWSCURRENT changed")
	}
	if count(e.notes.events(), rotation.EventSucceeded) != 0 {
		t.Fatal("a refused finish was notified as a success")
	}
}

// finishSecret after createSecret alone used to make AWSCURRENT a value the
// target never accepted.
func TestFinishSecretRefusesAPendingValueThatHasNotPassedTestSecret(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	refused := func(when string) {
		t.Helper()
		before := e.stages(arn)
		re := wantClass(t, e.step(arn, token, rotation.StepFinish), rotation.ClassState)
		if !strings.Contains(re.Error(), "has not passed testSecret") {
			t.Fatalf("%s: the refusal does not say why: %v", when, re)
		}
		if after := e.stages(arn); !sameStages(before, after) {
			t.Fatalf("%s: labels changed: before %v, after %v", when, before, after)
		}
		if v := e.value(arn, rotation.StageCurrent); v != initial || !e.strategy.tgt.ok(v) {
			t.Fatalf("%s: AWSCURRENT no longer the working initial value", when)
		}
	}
	if err := e.step(arn, token, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	refused("after createSecret alone")
	if err := e.step(arn, token, rotation.StepSet); err != nil {
		t.Fatal(err)
	}
	refused("after setSecret without testSecret")
	e.strategy.failTest = rotation.NewError(rotation.ClassAuthentication, "target:login", "refused", nil)
	if err := e.step(arn, token, rotation.StepTest); err == nil {
		t.Fatal("want the test to fail")
	}
	refused("after a failed testSecret")
	e.strategy.failTest = nil
	if err := e.step(arn, token, rotation.StepTest); err != nil {
		t.Fatal(err)
	}
	if err := e.step(arn, token, rotation.StepFinish); err != nil {
		t.Fatalf("a tested version was not promoted: %v", err)
	}
	if st := e.stages(arn)[token]; !slices.Contains(st, rotation.StageCurrent) {
		t.Fatalf("token not current: %v", st)
	}
}

// The proof belongs to the version tested, not to "some earlier rotation".
func TestTheTestedMarkerProvesOnlyTheVersionThatPassedTestSecret(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	first, err := e.driver().Rotate(context.Background(), arn, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := e.stages(arn)[first.Token]; !slices.Contains(st, rotation.StageTested) {
		t.Fatalf("the promoted version does not carry %s: %v", rotation.StageTested, st)
	}
	token := e.placeholder(arn)
	for _, s := range []rotation.Step{rotation.StepCreate, rotation.StepSet} {
		if err := e.step(arn, token, s); err != nil {
			t.Fatal(err)
		}
	}
	wantClass(t, e.step(arn, token, rotation.StepFinish), rotation.ClassState)
	if err := e.step(arn, token, rotation.StepTest); err != nil {
		t.Fatal(err)
	}
	st := e.stages(arn)
	if !slices.Contains(st[token], rotation.StageTested) || slices.Contains(st[first.Token], rotation.StageTested) {
		t.Fatalf("the marker did not move to the newly tested version: %v", st)
	}
}

// RotateImmediately=false: testSecret on the empty placeholder is a
// configuration test; it proves nothing about a value to promote.
func TestAConfigurationTestLeavesNoTestedMarker(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	if err := e.step(arn, token, rotation.StepTest); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(e.stages(arn)[token], rotation.StageTested) {
		t.Fatal("a configuration test marked the empty placeholder as tested")
	}
	wantClass(t, e.step(arn, token, rotation.StepFinish), rotation.ClassState)
}

// moto under load applies a request, drops the connection, and the SDK's
// retry fails: the marker move must count "already on the token" as done.
func TestMarkingTestedTreatsAnAlreadyAppliedMoveAsDone(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	sp.onUpdate = func(in *secretsmanager.UpdateSecretVersionStageInput, err error) error {
		if err == nil && aws.ToString(in.VersionStage) == rotation.StageTested {
			return &smtypes.InvalidParameterException{Message: aws.String("Version stage " + rotation.StageTested + " not found in version ...")}
		}
		return nil
	}
	arn := e.newSecret(initial)
	if _, err := e.driver().Rotate(context.Background(), arn, ""); err != nil {
		t.Fatalf("an applied marker move whose answer was lost failed the rotation: %v", err)
	}
	if len(sp.moves(rotation.StageTested)) != 1 {
		t.Fatalf("want one marker move, got %d", len(sp.moves(rotation.StageTested)))
	}
}

// A retried finishSecret (token current, AWSPENDING still on it) used to
// publish rotation.succeeded again.
func TestOneSuccessNotificationPerPromotionEvenWhenFinishIsRetried(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	for _, s := range rotation.Steps {
		if err := e.step(arn, token, s); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := e.step(arn, token, rotation.StepFinish); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(e.notes.events(), rotation.EventSucceeded); n != 1 {
		t.Fatalf("want exactly one %s for one promotion, got %d: %v", rotation.EventSucceeded, n, e.notes.events())
	}
	if e.strategy.finished != 4 {
		t.Fatalf("the retried finishes did not re-run the hook: %d runs", e.strategy.finished)
	}
	if !strings.Contains(e.logs.String(), `"outcome":"finish-retried"`) {
		t.Fatal("a retried finish is not logged as finish-retried")
	}
}

// A hook that fails once: the promotion is announced once, the failure once,
// the retry that completes the hook adds no success.
func TestAFailedAfterFinishHookIsNotifiedBesideItsOnePromotion(t *testing.T) {
	e := newEnv(t)
	e.strategy.failFin = errors.New("hook broke")
	e.strategy.failFinN = 1
	arn := e.newSecret(initial)
	if _, err := e.driver().Rotate(context.Background(), arn, ""); err != nil {
		t.Fatal(err)
	}
	ev := e.notes.events()
	if count(ev, rotation.EventSucceeded) != 1 || count(ev, rotation.EventFailed) != 1 {
		t.Fatalf("want one success and one failure notification, got %v", ev)
	}
}

func TestProbeProvesTheCurrentVersionAndChangesNothing(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	res, err := e.driver().Rotate(context.Background(), arn, "")
	if err != nil {
		t.Fatal(err)
	}
	before := e.stages(arn)
	puts, updates, notes := len(sp.puts), len(sp.updates), len(e.notes.events())
	if err := e.step(arn, res.Token, rotation.StepProbe); err != nil {
		t.Fatalf("probe of a working AWSCURRENT: %v", err)
	}
	lt := e.strategy.lastTest
	if !lt.ConfigTest || lt.Pending.ID != res.Token || string(lt.Pending.Value) != string(lt.Current.Value) {
		t.Fatalf("the probe must run Test in configuration-test mode on the current version: %+v", lt)
	}
	if !sameStages(before, e.stages(arn)) || len(sp.puts) != puts || len(sp.updates) != updates || len(e.notes.events()) != notes {
		t.Fatal("the probe changed something or notified")
	}
	if !strings.Contains(e.logs.String(), `"outcome":"probe-passed"`) {
		t.Fatal("the probe's log line does not say it passed")
	}
	// Only the current version can be probed.
	var prev string
	for id, st := range before {
		if slices.Contains(st, rotation.StagePrevious) {
			prev = id
		}
	}
	re := wantClass(t, e.step(arn, prev, rotation.StepProbe), rotation.ClassState)
	if !strings.Contains(re.Error(), "not AWSCURRENT") {
		t.Fatalf("%v", re)
	}
	// A current value the target refuses fails the probe, changing nothing.
	if _, err := e.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(`{"n":9,"password":"never-set"}`)}); err != nil {
		t.Fatal(err)
	}
	var cur string
	for id, st := range e.stages(arn) {
		if slices.Contains(st, rotation.StageCurrent) {
			cur = id
		}
	}
	before = e.stages(arn)
	wantClass(t, e.step(arn, cur, rotation.StepProbe), rotation.ClassAuthentication)
	if !sameStages(before, e.stages(arn)) {
		t.Fatal("a failed probe changed labels")
	}
}

func TestProbeIsAcceptedByTheEventParserButIsNotARotationStep(t *testing.T) {
	ev, err := rotation.ParseEvent([]byte(`{"Step":"probeSecret","SecretId":"arn:x","ClientRequestToken":"v1"}`))
	if err != nil || ev.Step != rotation.StepProbe {
		t.Fatalf("%v %v", ev, err)
	}
	if slices.Contains(rotation.Steps, rotation.StepProbe) {
		t.Fatal("the service's four steps must not include the probe")
	}
}

// dropFirstAnswer is a reverse proxy in front of moto that forwards the
// first UpdateSecretVersionStage of AWSCURRENT and then drops the connection
// instead of answering, as moto under load does.
func dropFirstAnswer(t *testing.T, target string) (string, *atomic.Bool) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	dropped := &atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".UpdateSecretVersionStage") && bytes.Contains(body, []byte(`"VersionStage":"AWSCURRENT"`)) && dropped.CompareAndSwap(false, true) {
			resp, err := http.DefaultTransport.RoundTrip(r.Clone(context.Background()))
			if err == nil {
				resp.Body.Close()
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, dropped
}

// The promotion itself: applied, answer lost, the SDK's retry refused. The
// rotation succeeds, with its one success notification.
func TestAPromotionWhoseAnswerWasLostIsThisFinishsPromotion(t *testing.T) {
	m := testenv.SharedMoto(t)
	proxy, dropped := dropFirstAnswer(t, m.Endpoint)
	cfg, err := m.AWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lossy := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(proxy) })
	e := newEnv(t, func(c *rotation.Config) { c.Secrets = lossy })
	arn := e.newSecret(initial)
	res, err := e.driver().Rotate(context.Background(), arn, "")
	if err != nil || res.Attempts != 1 {
		t.Fatalf("an applied promotion whose answer was lost failed the step: %v (attempts %v)", err, res)
	}
	if !dropped.Load() {
		t.Fatal("setup: the proxy dropped no answer")
	}
	if n := count(e.notes.events(), rotation.EventSucceeded); n != 1 {
		t.Fatalf("want one success notification, got %v\n%s", e.notes.events(), e.logs.String())
	}
}

// Two execution environments finish the same token at once: one promotes,
// the other's move is refused and it finds the token current. One success.
func TestAConcurrentFinishOfTheSameTokenPublishesOneSuccess(t *testing.T) {
	sp := &spy{}
	e := newEnv(t, withSpy(sp))
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	for _, s := range []rotation.Step{rotation.StepCreate, rotation.StepSet, rotation.StepTest} {
		if err := e.step(arn, token, s); err != nil {
			t.Fatal(err)
		}
	}
	other, err := rotation.New(rotation.Config{Secrets: e.sm, Strategy: e.strategy, Notifier: e.notes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	sp.beforeUpdate = func(in *secretsmanager.UpdateSecretVersionStageInput) {
		if aws.ToString(in.VersionStage) == rotation.StageCurrent {
			once.Do(func() {
				if err := other.Handle(context.Background(), rotation.Event{Step: rotation.StepFinish, SecretID: arn, ClientRequestToken: token}); err != nil {
					t.Errorf("the other environment's finish: %v", err)
				}
			})
		}
	}
	if err := e.step(arn, token, rotation.StepFinish); err != nil {
		t.Fatalf("the finish that lost the race must succeed without work: %v", err)
	}
	if n := count(e.notes.events(), rotation.EventSucceeded); n != 1 {
		t.Fatalf("want one success notification for one promotion, got %v", e.notes.events())
	}
	if !slices.Contains(e.stages(arn)[token], rotation.StageCurrent) {
		t.Fatal("token not current")
	}
}

// An operator writes a new pending value by hand mid-rotation: it carries no
// proof, so finishSecret refuses it; the old token is no longer pending.
func TestAHandWrittenPendingValueIsNeverPromotedUntested(t *testing.T) {
	e := newEnv(t)
	arn := e.newSecret(initial)
	token := e.placeholder(arn)
	for _, s := range []rotation.Step{rotation.StepCreate, rotation.StepSet, rotation.StepTest} {
		if err := e.step(arn, token, s); err != nil {
			t.Fatal(err)
		}
	}
	hand := "00000000-0000-4000-8000-0000000000aa"
	if _, err := e.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(hand),
		SecretString: aws.String(`{"n":7,"password":"typed-by-hand"}`), VersionStages: []string{rotation.StagePending}}); err != nil {
		t.Fatal(err)
	}
	wantClass(t, e.step(arn, token, rotation.StepFinish), rotation.ClassState)
	re := wantClass(t, e.step(arn, hand, rotation.StepFinish), rotation.ClassState)
	if !strings.Contains(re.Error(), "has not passed testSecret") {
		t.Fatalf("%v", re)
	}
	if e.value(arn, rotation.StageCurrent) != initial {
		t.Fatal("AWSCURRENT changed")
	}
}
