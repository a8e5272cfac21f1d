package nodetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// stack is the local stack the Node stack tests run against: moto (Secrets
// Manager, KMS, SNS → SQS), PostgreSQL with TLS, and the three rotation
// functions under the Lambda runtime emulator. Node asks for rotations over
// a loopback HTTP endpoint, so it decides when they happen relative to its
// own traffic; the Go side drives them exactly as the demo does.
type stack struct {
	moto   *testenv.Moto
	pg     *testenv.Postgres
	sm     *secretsmanager.Client
	kmsc   *kms.Client
	lambda string
	kmsKey string
	queue  string
	caFile string
	arns   map[string]string             // logical name → secret ARN
	fn     map[string]*testenv.RIE       // logical name → the function rotating it
	mu     sync.Mutex                    // one rotation at a time
	log    func(format string, a ...any) // t.Logf of the running test
	run    string                        // suffix of this run's names
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	var pgErr, buildErr error
	s := &stack{arns: map[string]string{}, fn: map[string]*testenv.RIE{}, log: t.Logf, run: strconv.FormatInt(time.Now().UnixNano(), 36)}
	wg.Add(2)
	go func() { defer wg.Done(); s.pg, pgErr = testenv.StartPostgres() }()
	go func() {
		defer wg.Done()
		if _, buildErr = testenv.RIEBinary(); buildErr != nil {
			return
		}
		for _, f := range []string{"dbrotate", "jwtrotate", "apikeyrotate"} {
			if _, buildErr = testenv.BuildBootstrap("./functions/" + f); buildErr != nil {
				return
			}
		}
	}()
	s.moto = testenv.SharedMoto(t)
	wg.Wait()
	if s.pg != nil {
		t.Cleanup(s.pg.Stop)
	}
	testenv.Require(t, pgErr)
	testenv.Require(t, buildErr)

	cfg, err := s.moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.sm, s.kmsc = secretsmanager.NewFromConfig(cfg), kms.NewFromConfig(cfg)
	sqsc, snsc := sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	key, err := s.kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("node interop: JWT private keys and envelopes")})
	if err != nil {
		t.Fatal(err)
	}
	s.kmsKey = aws.ToString(key.KeyMetadata.Arn)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("node-rotation-notifications-" + s.run)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("node-rotation-notifications-" + s.run)})
	if err != nil {
		t.Fatal(err)
	}
	s.queue = aws.ToString(q.QueueUrl)
	qa, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		t.Fatal(err)
	}
	if s.lambda, err = s.moto.RegisterNoopLambda(ctx, "node-interop-rotation-"+s.run); err != nil {
		t.Fatal(err)
	}
	s.caFile = filepath.Join(t.TempDir(), "pg-ca.pem")
	if err := os.WriteFile(s.caFile, s.pg.CACertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	common := append(s.moto.Env(), "SNS_TOPIC_ARN="+aws.ToString(topic.TopicArn), "LOG_LEVEL=warn")

	// PostgreSQL roles and their secrets.
	conn, err := s.pg.AdminConn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE ROLE node_admin LOGIN CREATEROLE PASSWORD 'node-admin-initial-password-1'",
		"CREATE ROLE node_single LOGIN PASSWORD 'node-single-initial-password-1'",
		"CREATE ROLE node_app LOGIN PASSWORD 'node-app-initial-password-1'",
		"GRANT node_app TO node_admin WITH ADMIN OPTION",
		"CREATE TABLE node_payees (id text PRIMARY KEY, iban text)", // for the column backfill
		"GRANT SELECT, INSERT, UPDATE ON node_payees TO node_single",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, " PASSWORD", 2)[0], err)
		}
	}
	conn.Close(ctx)
	base := fmt.Sprintf(`"engine":"postgres","host":"localhost","port":%d,"dbname":"postgres"`, s.pg.Port)
	s.create(t, "db-admin", "/node/test/db/admin", fmt.Sprintf(`{%s,"username":"node_admin","password":"node-admin-initial-password-1"}`, base))
	s.create(t, "db-single", "/node/test/db/single", fmt.Sprintf(`{%s,"username":"node_single","password":"node-single-initial-password-1"}`, base))
	s.create(t, "db-alternating", "/node/test/db/app", fmt.Sprintf(`{%s,"username":"node_app","password":"node-app-initial-password-1","masterarn":%q}`, base, s.arns["db-admin"]))
	s.create(t, "jwt", "/node/test/jwt/signing-keys", `{}`)
	s.create(t, "jwt-public", "/node/test/jwt/public-jwks", `{"keys":[]}`)
	s.create(t, "apikey", "/node/test/api/partner-key", `{"schemaVersion":1,"kind":"apikey"}`)
	s.create(t, "apikey-verifier", "/node/test/api/verifier", `{"schemaVersion":1,"kind":"apikey","keys":[]}`)
	s.create(t, "webhook", "/node/test/webhooks/signing-key", `{"schemaVersion":1,"kind":"webhook"}`)
	s.create(t, "apikey-peppered", "/node/test/api/peppered-key", `{"schemaVersion":1,"kind":"apikey"}`)
	s.create(t, "apikey-peppered-verifier", "/node/test/api/peppered-verifier", `{"schemaVersion":1,"kind":"apikey","keys":[]}`)
	s.create(t, "apikey-pepper", "/node/test/api/pepper", "node-interop-pepper-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"-0123456789abcdef")
	s.create(t, "webhook-verifier", "/node/test/webhooks/verifier", `{"schemaVersion":1,"kind":"webhook","keys":[]}`)

	db := s.start(t, "dbrotate", common, "DB_CA_BUNDLE_FILE="+s.caFile, "OUTGOING_USER_GRACE=1h")
	s.fn["db-single"], s.fn["db-alternating"] = db, db
	s.fn["jwt"] = s.start(t, "jwtrotate", common, "JWT_KMS_KEY_ARN="+s.kmsKey, "JWT_ALGORITHM=ES256", "JWT_PUBLIC_JWKS_SECRET_ARN="+s.arns["jwt-public"])
	s.fn["apikey"] = s.start(t, "apikeyrotate", common, "APIKEY_VERIFIER_SECRET_ARN="+s.arns["apikey-verifier"], "APIKEY_OVERLAP=24h")
	s.fn["webhook"] = s.start(t, "apikeyrotate", common, "APIKEY_VERIFIER_SECRET_ARN="+s.arns["webhook-verifier"], "APIKEY_KIND=webhook", "APIKEY_OVERLAP=24h")
	s.fn["apikey-peppered"] = s.start(t, "apikeyrotate", common, "APIKEY_VERIFIER_SECRET_ARN="+s.arns["apikey-peppered-verifier"], "APIKEY_PEPPER_SECRET_ARN="+s.arns["apikey-pepper"], "APIKEY_OVERLAP=1h")
	return s
}

func (s *stack) create(t *testing.T, logical, name, value string) {
	t.Helper()
	name += "-" + s.run // moto lives for the whole package: a second run gets new secrets
	out, err := s.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	s.arns[logical] = aws.ToString(out.ARN)
}

func (s *stack) start(t *testing.T, fn string, common []string, extra ...string) *testenv.RIE {
	t.Helper()
	bin, err := testenv.BuildBootstrap("./functions/" + fn)
	if err != nil {
		t.Fatal(err)
	}
	rie, err := testenv.StartRIE(bin, append(append([]string{}, common...), extra...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rie.Stop)
	return rie
}

// rotate runs one whole rotation of a logical secret, as Secrets Manager would.
func (s *stack) rotate(ctx context.Context, logical string) (string, error) {
	return s.rotateWith(ctx, logical, nil)
}

// rotateWith is rotate with a hook that runs before each step.
func (s *stack) rotateWith(ctx context.Context, logical string, before func(ctx context.Context, step rotation.Step)) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rie, arn := s.fn[logical], s.arns[logical]
	if rie == nil {
		return "", fmt.Errorf("no rotation function for %q", logical)
	}
	d := &driver.Driver{SM: s.sm, Invoke: rie, LambdaARN: s.lambda, Attempts: 1}
	if before != nil {
		d.Wrap = func(ctx context.Context, _ int, step rotation.Step) context.Context {
			before(ctx, step)
			return ctx
		}
	}
	res, err := d.Rotate(ctx, arn, "")
	if err != nil {
		var fe *testenv.FunctionError
		if errors.As(err, &fe) {
			return "", fmt.Errorf("rotation of %s failed: %s", logical, fe.Message)
		}
		return "", fmt.Errorf("rotation of %s failed: %w", logical, err)
	}
	s.log("rotated %s in %s", logical, res.Duration.Round(time.Millisecond))
	return res.Token, nil
}

// held is a rotation stopped before one of its steps until the Node test
// releases it.
type held struct {
	release chan struct{}
	done    chan error
}

// control serves the Node tests on a loopback port:
//
//	POST /rotate/<logical name>                  one whole rotation
//	POST /rotate/<logical name>?hold=testSecret  a rotation that stops before that step; answers once stopped
//	POST /release/<logical name>                 lets the held rotation finish; answers with its outcome
func (s *stack) control(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hmu sync.Mutex
	holds := map[string]*held{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/release/"); ok && r.Method == http.MethodPost {
			hmu.Lock()
			h := holds[name]
			delete(holds, name)
			hmu.Unlock()
			if h == nil {
				http.Error(w, "no held rotation of "+name, http.StatusConflict)
				return
			}
			close(h.release)
			if err := <-h.done; err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/rotate/")
		if r.Method != http.MethodPost || !ok {
			http.Error(w, "POST /rotate/<secret> or /release/<secret>", http.StatusNotFound)
			return
		}
		if step := rotation.Step(r.URL.Query().Get("hold")); step != "" {
			h := &held{release: make(chan struct{}), done: make(chan error, 1)}
			stopped := make(chan struct{})
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				_, err := s.rotateWith(ctx, name, func(ctx context.Context, st rotation.Step) {
					if st == step {
						close(stopped)
						select {
						case <-h.release:
						case <-ctx.Done():
						}
					}
				})
				h.done <- err
			}()
			select {
			case <-stopped:
				hmu.Lock()
				holds[name] = h
				hmu.Unlock()
			case err := <-h.done:
				http.Error(w, fmt.Sprintf("the rotation ended before %s: %v", step, err), http.StatusInternalServerError)
			}
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		token, err := s.rotate(ctx, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

// env is what the Node stack tests read: the SDK endpoint and credentials,
// the control endpoint, every secret ARN (NODETEST_SECRET_<NAME>), the KMS
// key, the queue, and how to reach PostgreSQL.
func (s *stack) env(control, out string) []string {
	env := append(s.moto.Env(),
		"NODETEST_CONTROL_URL="+control,
		"NODETEST_OUT_DIR="+out,
		"NODETEST_KMS_KEY_ARN="+s.kmsKey,
		"NODETEST_QUEUE_URL="+s.queue,
		"NODETEST_PG_CA_FILE="+s.caFile,
	)
	for k, v := range s.arns {
		env = append(env, "NODETEST_SECRET_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))+"="+v)
	}
	return env
}
