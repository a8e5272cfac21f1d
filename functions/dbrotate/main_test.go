package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/awscall"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/operator"
	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// These tests drive the built bootstrap under the Lambda runtime emulator on
// moto and the test PostgreSQL cluster, from outside, as an operator or a
// misbehaving caller would.

type stack struct {
	t      *testing.T
	pg     *testenv.Postgres
	moto   *testenv.Moto
	sm     *secretsmanager.Client
	noop   string // the Lambda ARN RotateSecret needs on moto
	proxy  *tcpProxy
	rie    *testenv.RIE
	lambda *awscall.Lambda // Lambda Invoke API client aimed at the emulator
}

var (
	noopOnce sync.Once
	noopARN  string
	noopErr  error
)

func newStack(t *testing.T, env ...string) *stack {
	t.Helper()
	s := &stack{t: t, pg: testenv.SharedPostgres(t), moto: testenv.SharedMoto(t)}
	ctx := context.Background()
	cfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.sm = secretsmanager.NewFromConfig(cfg)
	noopOnce.Do(func() { noopARN, noopErr = s.moto.RegisterNoopLambda(ctx, "dbrotate-main-test") })
	if noopErr != nil {
		t.Fatal(noopErr)
	}
	s.noop = noopARN
	s.proxy = startProxy(t, fmt.Sprintf("127.0.0.1:%d", s.pg.Port))
	bin, err := testenv.BuildBootstrap("./functions/dbrotate")
	testenv.Require(t, err)
	s.rie, err = testenv.StartRIE(bin, append(append(s.moto.Env(), "DB_CA_BUNDLE_FILE="+s.pg.CACertPath, "OUTGOING_USER_GRACE=1h", "AWS_LAMBDA_FUNCTION_NAME=dbrotate"), env...))
	testenv.Require(t, err)
	t.Cleanup(s.rie.Stop)
	s.lambda = awscall.NewLambda(cfg, s.rie.Endpoint)
	return s
}

// singleUser creates a login role and its secret, which reaches the
// database through the test's proxy (so the test can take it down).
func (s *stack) singleUser() (arn, pw string) {
	s.t.Helper()
	ctx := context.Background()
	user := fmt.Sprintf("main_%d", time.Now().UnixNano())
	pw, err := password.Policy{Length: 24, Exclude: password.DefaultExclude}.Generate()
	if err != nil {
		s.t.Fatal(err)
	}
	v, err := pgstrategy.ScramVerifier(pw)
	if err != nil {
		s.t.Fatal(err)
	}
	c, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s'", pgx.Identifier{user}.Sanitize(), v)); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if c, err := s.pg.AdminConn(ctx, "postgres"); err == nil {
			c.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize())
			c.Close(ctx)
		}
	})
	host, port, _ := net.SplitHostPort(s.proxy.addr)
	val, _ := json.Marshal(map[string]any{"engine": "postgres", "host": host, "port": port, "username": user, "password": pw, "dbname": "postgres"})
	out, err := s.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("main-test/" + user), SecretString: aws.String(string(val))})
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.ARN), pw
}

// placeholder starts a rotation as the service does (the empty AWSPENDING).
func (s *stack) placeholder(arn string) string {
	s.t.Helper()
	out, err := s.sm.RotateSecret(context.Background(), &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(s.noop),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true)})
	if err != nil {
		s.t.Fatal(err)
	}
	return aws.ToString(out.VersionId)
}

func (s *stack) step(arn, token string, step rotation.Step) error {
	return operator.Invoke(context.Background(), s.lambda, "function", operator.Event{Step: operator.Step(step), SecretID: arn, ClientRequestToken: token})
}

func (s *stack) stages(arn string) map[string][]string {
	s.t.Helper()
	d, err := s.sm.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		s.t.Fatal(err)
	}
	return d.VersionIdsToStages
}

// currentLogsIn reads AWSCURRENT by stage, as an application does, and logs
// in with it directly (not through the proxy), over verified TLS.
func (s *stack) currentLogsIn() func(arn string) error {
	return func(arn string) error {
		out, err := s.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent)})
		if err != nil {
			return err
		}
		var c struct{ Username, Password string }
		if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &c); err != nil {
			return err
		}
		cfg, err := pgconn.ParseConfig("sslmode=disable")
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.pg.CACertPEM)
		cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = "127.0.0.1", uint16(s.pg.Port), "postgres", c.Username, c.Password
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		cfg.Fallbacks = nil
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}
}

func sameStages(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		x, y := slices.Clone(v), slices.Clone(b[k])
		slices.Sort(x)
		slices.Sort(y)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}

// tcpProxy forwards TCP to the database; down refuses new connections (the
// database unreachable for the function).
type tcpProxy struct {
	addr string
	ln   net.Listener
	down atomic.Bool
	wg   sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				c.Close()
				continue
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// finishSecret straight after RotateSecret, and after createSecret alone,
// is refused with the reason; nothing changes and AWSCURRENT still logs in.
func TestFinishSecretOutOfOrderIsRefusedAndChangesNothing(t *testing.T) {
	s := newStack(t)
	loginCurrent := s.currentLogsIn()
	arn, _ := s.singleUser()
	token := s.placeholder(arn)
	for _, c := range []struct {
		before rotation.Step
		want   string
	}{{"", "has no value"}, {rotation.StepCreate, "has not passed testSecret"}} {
		if c.before != "" {
			if err := s.step(arn, token, c.before); err != nil {
				t.Fatalf("%s: %v\n%s", c.before, err, s.rie.Logs())
			}
		}
		before := s.stages(arn)
		err := s.step(arn, token, rotation.StepFinish)
		var se *operator.StepError
		if !errors.As(err, &se) || !strings.Contains(se.Message, c.want) || !strings.Contains(se.Message, "nothing was changed") {
			t.Fatalf("finishSecret after %q: want a refusal saying %q, got %v", c.before, c.want, err)
		}
		if !sameStages(before, s.stages(arn)) {
			t.Fatalf("finishSecret after %q changed labels", c.before)
		}
		if err := loginCurrent(arn); err != nil {
			t.Fatalf("after the refused finishSecret AWSCURRENT does not log in: %v", err)
		}
	}
	// The read-only probe proves the current credential and changes nothing.
	before := s.stages(arn)
	var current string
	for id, st := range before {
		if slices.Contains(st, rotation.StageCurrent) {
			current = id
		}
	}
	if err := s.step(arn, current, rotation.StepProbe); err != nil {
		t.Fatalf("probeSecret on a working AWSCURRENT: %v", err)
	}
	if err := s.step(arn, token, rotation.StepProbe); err == nil || !strings.Contains(err.Error(), "not AWSCURRENT") {
		t.Fatalf("probeSecret on the pending version: want a refusal, got %v", err)
	}
	if !sameStages(before, s.stages(arn)) || !strings.Contains(s.rie.Logs(), `"outcome":"probe-passed"`) {
		t.Fatal("the probe changed labels or did not log its outcome")
	}
}

// Single user: createSecret and setSecret succeed, PostgreSQL is down for
// testSecret, the rotation fails. Discard refuses (AWSCURRENT does not
// authenticate any more: the database has the pending password); resume
// finishes the rotation; AWSCURRENT logs in and the next rotation works.
func TestUnstickHealsASingleUserRotationThatFailedWithPostgreSQLDown(t *testing.T) {
	s := newStack(t)
	loginCurrent := s.currentLogsIn()
	ctx := context.Background()
	arn, _ := s.singleUser()
	d := &driver.Driver{SM: s.sm, Invoke: s.rie, LambdaARN: s.noop, Attempts: 1, StepTimeout: 30 * time.Second,
		Wrap: func(ctx context.Context, _ int, step rotation.Step) context.Context {
			s.proxy.down.Store(step == rotation.StepTest)
			return ctx
		}}
	if _, err := d.Rotate(ctx, arn, ""); err == nil || !strings.Contains(err.Error(), "testSecret") {
		t.Fatalf("want the rotation to fail in testSecret, got %v", err)
	}
	s.proxy.down.Store(false)
	if err := loginCurrent(arn); err == nil {
		t.Fatal("setup: AWSCURRENT should no longer log in (setSecret changed the password)")
	}
	before := s.stages(arn)
	u := &operator.Unsticker{Secrets: s.sm, Lambda: s.lambda, Function: "function"}

	var out bytes.Buffer
	err := u.Unstick(ctx, arn, operator.ModeDiscard, true, &out)
	if !errors.Is(err, operator.ErrRefused) || !strings.Contains(out.String(), "proof: FAILED") {
		t.Fatalf("discard --dry-run without proof: want a refusal, got %v\n%s", err, out.String())
	}
	t.Logf("discard --dry-run:\n%srefused: %v", out.String(), err)
	if err := u.Unstick(ctx, arn, operator.ModeDiscard, false, &out); !errors.Is(err, operator.ErrRefused) {
		t.Fatalf("discard without proof: want a refusal, got %v", err)
	}
	if !sameStages(before, s.stages(arn)) {
		t.Fatal("a refused discard changed labels")
	}

	out.Reset()
	if err := u.Unstick(ctx, arn, operator.ModeResume, false, &out); err != nil {
		t.Fatalf("resume: %v\n%s\n%s", err, out.String(), s.rie.Logs())
	}
	t.Logf("resume:\n%s", out.String())
	if err := loginCurrent(arn); err != nil {
		t.Fatalf("after resume AWSCURRENT does not log in: %v", err)
	}
	for id, st := range s.stages(arn) {
		if slices.Contains(st, rotation.StagePending) {
			t.Fatalf("AWSPENDING left on %s after resume", id)
		}
	}
	d.Wrap = nil
	if _, err := d.Rotate(ctx, arn, ""); err != nil {
		t.Fatalf("the next rotation after resume: %v", err)
	}
	if err := loginCurrent(arn); err != nil {
		t.Fatal(err)
	}
}

// One rotation.succeeded per promotion, read from an SQS queue subscribed
// to the function's SNS topic, with finishSecret retried twice.
func TestOneSuccessNotificationPerPromotionReachesTheQueue(t *testing.T) {
	m := testenv.SharedMoto(t)
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(fmt.Sprintf("dbrotate-notes-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("dbrotate-notes-%d", time.Now().UnixNano()))})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, "SNS_TOPIC_ARN="+aws.ToString(topic.TopicArn))
	arn, _ := s.singleUser()
	var tokens []string
	for range 2 {
		token := s.placeholder(arn)
		tokens = append(tokens, token)
		for _, st := range append(slices.Clone(rotation.Steps), rotation.StepFinish, rotation.StepFinish) {
			if err := s.step(arn, token, st); err != nil {
				t.Fatalf("%s: %v\n%s", st, err, s.rie.Logs())
			}
		}
		if _, err := s.sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(token)}); err != nil {
			t.Fatal(err)
		}
	}
	succeeded := map[string]int{}
	started := 0
	deadline := time.Now().Add(15 * time.Second)
	for started < 2 && time.Now().Before(deadline) {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range out.Messages {
			var envl struct{ Message string }
			if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &envl); err != nil {
				t.Fatal(err)
			}
			var n rotation.Notification
			if err := json.Unmarshal([]byte(envl.Message), &n); err != nil {
				t.Fatal(err)
			}
			switch n.Event {
			case rotation.EventSucceeded:
				succeeded[n.VersionID]++
			case rotation.EventStarted:
				started++
			}
		}
	}
	// Drain what else arrived (a second success would come after the first).
	for range 2 {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range out.Messages {
			var envl struct{ Message string }
			_ = json.Unmarshal([]byte(aws.ToString(msg.Body)), &envl)
			var n rotation.Notification
			_ = json.Unmarshal([]byte(envl.Message), &n)
			if n.Event == rotation.EventSucceeded {
				succeeded[n.VersionID]++
			}
		}
	}
	for _, tok := range tokens {
		if succeeded[tok] != 1 {
			t.Fatalf("want exactly one %s per promotion, got %v for tokens %v", rotation.EventSucceeded, succeeded, tokens)
		}
	}
	if !strings.Contains(s.rie.Logs(), `"outcome":"finish-retried"`) {
		t.Fatal("the retried finishSecret is not logged as finish-retried")
	}
}
