package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/internal/wire"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/jwks"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// demo runs every function on an embedded local stack and checks what a
// user would check by hand. Every check that fails is collected; the demo
// exits non-zero if any did.
type demo struct {
	out      io.Writer
	start    time.Time
	failures []string
	passes   int

	*testenv.Stack // moto, PostgreSQL, the Secrets Manager client
	kmsc           *kms.Client
	sqsc           *sqs.Client
	queue          string
	topic          string
	lambda         string
	kmsKey         string
	env            []string // common function environment

	cleanups []func()
}

func cmdDemo(ctx context.Context, args []string, out io.Writer) error {
	cmd := cli.New("devtool demo", "", "Runs every function on an embedded local stack (moto, PostgreSQL, the Lambda runtime emulator) and checks what a\nuser would check by hand.", out)
	if _, err := cmd.Parse(args, 0); err != nil {
		return err
	}
	d := &demo{out: out, start: time.Now()}
	defer d.cleanup()
	err := d.run(ctx)
	d.line("")
	if err != nil {
		d.failures = append(d.failures, "demo aborted: "+err.Error())
	}
	if len(d.failures) > 0 {
		fmt.Fprintf(out, "DEMO FAILED: %d of %d checks failed (%s):\n", len(d.failures), len(d.failures)+d.passes, time.Since(d.start).Round(100*time.Millisecond))
		for _, f := range d.failures {
			fmt.Fprintf(out, "  ✗ %s\n", f)
		}
		return fmt.Errorf("%d check(s) failed", len(d.failures))
	}
	fmt.Fprintf(out, "DEMO PASSED: all %d checks passed in %s; everything it started is stopped.\n", d.passes, time.Since(d.start).Round(100*time.Millisecond))
	return nil
}

func (d *demo) line(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

func (d *demo) section(title string) {
	d.line("\n== %s  [%.1fs]", title, time.Since(d.start).Seconds())
}

// check records one named check.
func (d *demo) check(name string, err error) bool {
	if err != nil {
		d.failures = append(d.failures, name+": "+err.Error())
		d.line("  ✗ %s: %v", name, err)
		return false
	}
	d.passes++
	d.line("  ✓ %s", name)
	return true
}

func (d *demo) run(ctx context.Context) error {
	d.section("Starting the local stack: moto (AWS APIs), PostgreSQL (scram-sha-256, TLS), Lambda runtime emulator")
	if err := d.startStack(ctx); err != nil {
		return err
	}
	if err := d.seedAWS(ctx); err != nil {
		return err
	}
	if err := d.dbDemo(ctx); err != nil {
		return err
	}
	if err := d.jwtDemo(ctx); err != nil {
		return err
	}
	if err := d.apikeyDemo(ctx); err != nil {
		return err
	}
	d.notifications(ctx)
	return nil
}

func (d *demo) startStack(ctx context.Context) error {
	o := testenv.StackOptions{Postgres: true, RIE: true}
	for _, f := range functionNames {
		o.Bootstraps = append(o.Bootstraps, "./functions/"+f)
	}
	s, err := testenv.StartStack(ctx, o)
	var me *testenv.MissingError
	if errors.As(err, &me) {
		return fmt.Errorf("%s\n  install it with: %s", me.What, me.Fix)
	}
	if err != nil {
		return err
	}
	d.Stack = s
	d.stopLater(s.Stop)
	d.line("  moto at %s; PostgreSQL %s:%d (TLS, server name %q); functions built for the runtime emulator", d.Moto.Endpoint, d.Postgres.Host, d.Postgres.Port, d.Postgres.ServerName)
	return nil
}

// stopLater registers a clean-up that cmdDemo runs, newest first, however
// the demo ends.
func (d *demo) stopLater(f func()) { d.cleanups = append(d.cleanups, f) }

func (d *demo) cleanup() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
	d.cleanups = nil
}

func (d *demo) seedAWS(ctx context.Context) error {
	cfg, err := d.Moto.AWSConfig(ctx)
	if err != nil {
		return err
	}
	d.kmsc = kms.NewFromConfig(cfg)
	d.sqsc = sqs.NewFromConfig(cfg)
	snsc := sns.NewFromConfig(cfg)
	key, err := d.kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("demo: JWT private keys")})
	if err != nil {
		return fmt.Errorf("create KMS key: %w", err)
	}
	d.kmsKey = aws.ToString(key.KeyMetadata.Arn)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("rotation-notifications")})
	if err != nil {
		return err
	}
	d.topic = aws.ToString(topic.TopicArn)
	q, err := d.sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("rotation-notifications")})
	if err != nil {
		return err
	}
	d.queue = aws.ToString(q.QueueUrl)
	qa, err := d.sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return err
	}
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(qa.Attributes["QueueArn"])}); err != nil {
		return err
	}
	if d.lambda, err = d.Moto.RegisterNoopLambda(ctx, "demo-rotation"); err != nil {
		return err
	}
	d.env = append(d.Moto.Env(), "SNS_TOPIC_ARN="+d.topic, "LOG_LEVEL=warn")
	d.line("  KMS key %s, SNS topic %s → SQS queue", short(d.kmsKey), short(d.topic))
	return nil
}

func short(arn string) string {
	if i := strings.LastIndexAny(arn, ":/"); i >= 0 && i < len(arn)-1 {
		return "…" + arn[i:]
	}
	return arn
}

// rotate rotates one secret through a function under the runtime emulator,
// the way `rotate local` does, printing each step with its time.
func (d *demo) rotate(ctx context.Context, rie *testenv.RIE, label, arn string) error {
	d.line("  rotating %s", label)
	drv := &driver.Driver{SM: d.SM, Invoke: rie, LambdaARN: d.lambda, Attempts: 1, OnStep: func(s driver.StepResult) {
		status := "ok"
		if s.Err != nil {
			status = "FAILED: " + s.Err.Error()
		}
		d.line("      %-13s %7.1f ms  %s", s.Step, float64(s.Duration.Microseconds())/1000, status)
	}}
	res, err := drv.Rotate(ctx, arn, "")
	if err != nil {
		d.line("%s", indent(rie.Logs(), "      function log | ", 15))
		return err
	}
	d.line("      → version %s is AWSCURRENT (%s)", res.Token[:8], res.Duration.Round(time.Millisecond))
	return nil
}

func (d *demo) startFunction(name string, extra ...string) (*testenv.RIE, error) {
	rie, err := startFunction(name, append(append([]string{}, d.env...), extra...))
	if err != nil {
		return nil, err
	}
	d.stopLater(rie.Stop)
	return rie, nil
}

// ---- PostgreSQL ----

type dbCreds struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (d *demo) login(ctx context.Context, value []byte) error {
	var c dbCreds
	if err := json.Unmarshal(value, &c); err != nil {
		return err
	}
	return d.loginAs(ctx, c.Username, c.Password)
}

func (d *demo) loginAs(ctx context.Context, user, password string) error {
	return d.Postgres.LoginTLS(ctx, d.Postgres.Host, d.Postgres.Port, d.Postgres.ServerName, "postgres", user, password)
}

func (d *demo) admin(ctx context.Context, sql ...string) error {
	conn, err := d.Postgres.AdminConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", strings.SplitN(s, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

func (d *demo) dbDemo(ctx context.Context) error {
	d.section("PostgreSQL credentials (functions/dbrotate, TLS verify-full, SCRAM verifiers computed client-side)")
	if err := d.admin(ctx,
		"CREATE ROLE demo_admin LOGIN CREATEROLE PASSWORD 'demo-admin-initial-password-1'",
		"CREATE ROLE app_single LOGIN PASSWORD 'app-single-initial-password-1'",
		"CREATE ROLE app_user LOGIN PASSWORD 'app-user-initial-password-1'",
		"GRANT app_user TO demo_admin WITH ADMIN OPTION",
	); err != nil {
		return err
	}
	base := fmt.Sprintf(`"engine":"postgres","host":"localhost","port":%d,"dbname":"postgres"`, d.Postgres.Port)
	adminARN, err := d.CreateSecret(ctx, "/demo/dev/db/admin", fmt.Sprintf(`{%s,"username":"demo_admin","password":"demo-admin-initial-password-1"}`, base))
	if err != nil {
		return err
	}
	singleARN, err := d.CreateSecret(ctx, "/demo/dev/db/single", fmt.Sprintf(`{%s,"username":"app_single","password":"app-single-initial-password-1"}`, base))
	if err != nil {
		return err
	}
	altARN, err := d.CreateSecret(ctx, "/demo/dev/db/app", fmt.Sprintf(`{%s,"username":"app_user","password":"app-user-initial-password-1","masterarn":%q}`, base, adminARN))
	if err != nil {
		return err
	}
	caFile, err := os.CreateTemp("", "demo-ca-*.pem")
	if err != nil {
		return err
	}
	d.stopLater(func() { os.Remove(caFile.Name()) })
	_, _ = caFile.Write(d.Postgres.CACertPEM)
	caFile.Close()
	rie, err := d.startFunction("dbrotate", "DB_CA_BUNDLE_FILE="+caFile.Name(), "OUTGOING_USER_GRACE=1h")
	if err != nil {
		return err
	}

	// Single user.
	before, _ := d.SecretValue(ctx, singleARN, rotation.StageCurrent)
	d.check("single user: the current password logs in before the rotation", d.login(ctx, before))
	if !d.check("single user: rotation succeeds", d.rotate(ctx, rie, "/demo/dev/db/single (single user)", singleARN)) {
		return nil
	}
	after, _ := d.SecretValue(ctx, singleARN, rotation.StageCurrent)
	d.check("single user: the new AWSCURRENT password logs in", d.login(ctx, after))
	d.check("single user: the old password is refused", expectErr(d.login(ctx, before), "the old password still logs in"))

	// Alternating users: two rotations, so both roles have been switched to.
	for i := 1; i <= 2; i++ {
		prevVal, _ := d.SecretValue(ctx, altARN, rotation.StageCurrent)
		if !d.check(fmt.Sprintf("alternating users: rotation %d succeeds", i), d.rotate(ctx, rie, fmt.Sprintf("/demo/dev/db/app (alternating users, rotation %d)", i), altARN)) {
			return nil
		}
		cur, _ := d.SecretValue(ctx, altARN, rotation.StageCurrent)
		prev, _ := d.SecretValue(ctx, altARN, rotation.StagePrevious)
		var c, p dbCreds
		_ = json.Unmarshal(cur, &c)
		_ = json.Unmarshal(prev, &p)
		d.line("      AWSCURRENT user %s, AWSPREVIOUS user %s", c.Username, p.Username)
		d.check(fmt.Sprintf("alternating users: AWSCURRENT (%s) logs in", c.Username), d.login(ctx, cur))
		d.check(fmt.Sprintf("alternating users: AWSPREVIOUS (%s) still logs in during the grace period", p.Username), d.login(ctx, prev))
		d.check("alternating users: the secret switched users", func() error {
			var pv dbCreds
			_ = json.Unmarshal(prevVal, &pv)
			if pv.Username == c.Username {
				return fmt.Errorf("still %s", c.Username)
			}
			return nil
		}())
		d.check(fmt.Sprintf("alternating users: the outgoing role %s has VALID UNTIL set", p.Username), d.validUntilSet(ctx, p.Username))
	}
	d.check("the server log holds no generated password", d.serverLogClean(ctx, singleARN, altARN))
	return nil
}

func expectErr(err error, msg string) error {
	if err == nil {
		return errors.New(msg)
	}
	return nil
}

func (d *demo) validUntilSet(ctx context.Context, role string) error {
	conn, err := d.Postgres.AdminConn(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var until *time.Time
	if err := conn.QueryRow(ctx, "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", role).Scan(&until); err != nil {
		return err
	}
	if until == nil || until.After(time.Now().Add(2*time.Hour)) {
		return fmt.Errorf("rolvaliduntil = %v", until)
	}
	d.line("      %s valid until %s", role, until.UTC().Format(time.RFC3339))
	return nil
}

func (d *demo) serverLogClean(ctx context.Context, arns ...string) error {
	log, err := d.Postgres.ServerLog()
	if err != nil {
		return err
	}
	for _, arn := range arns {
		for _, stage := range []string{rotation.StageCurrent, rotation.StagePrevious} {
			v, err := d.SecretValue(ctx, arn, stage)
			if err != nil {
				continue
			}
			var c dbCreds
			_ = json.Unmarshal(v, &c)
			// The seeded passwords were set in plaintext by the demo itself;
			// only the generated ones must never reach the server.
			if c.Password != "" && !strings.Contains(c.Password, "initial-password") && strings.Contains(string(log), c.Password) {
				return fmt.Errorf("a rotated password of %s is in the server log", c.Username)
			}
		}
	}
	return nil
}

// ---- JWT signing keys ----

func (d *demo) jwtDemo(ctx context.Context) error {
	d.section("JWT signing keys (functions/jwtrotate: pre-published next key, overlapping JWKS, KMS-sealed private keys)")
	arn, err := d.CreateSecret(ctx, "/demo/dev/jwt/signing-keys", `{}`)
	if err != nil {
		return err
	}
	rie, err := d.startFunction("jwtrotate", "JWT_KMS_KEY_ARN="+d.kmsKey, "JWT_ALGORITHM=ES256")
	if err != nil {
		return err
	}
	if !d.check("first rotation bootstraps an active and a next key", d.rotate(ctx, rie, "/demo/dev/jwt/signing-keys (bootstrap)", arn)) {
		return nil
	}
	doc1, err := d.jwtDoc(ctx, arn)
	if err != nil {
		return err
	}
	d.line("      JWKS kids: %s (active %s, next %s)", strings.Join(doc1.kids, ", "), doc1.active, doc1.next)

	kp, err := envelope.NewKMSProvider(ctx, envelope.KMSConfig{Client: d.kmsc, KeyID: d.kmsKey})
	if err != nil {
		return err
	}
	env, err := envelope.New(envelope.Config{Provider: kp})
	if err != nil {
		return err
	}
	signer, err := jwks.NewSigner(ctx, jwks.SignerConfig{Secrets: d.SM, SecretID: arn, Sealer: env})
	if err != nil {
		return err
	}
	token, err := signer.Sign(ctx, jwt.RegisteredClaims{Subject: "demo-user", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	if !d.check("a token is signed with the active key", err) {
		return nil
	}
	if !d.check("second rotation succeeds", d.rotate(ctx, rie, "/demo/dev/jwt/signing-keys (rotation 2)", arn)) {
		return nil
	}
	doc2, err := d.jwtDoc(ctx, arn)
	if err != nil {
		return err
	}
	d.line("      JWKS kids: %s (active %s, next %s)", strings.Join(doc2.kids, ", "), doc2.active, doc2.next)
	d.check("the new active key was published as next one rotation earlier", func() error {
		if doc2.active != doc1.next {
			return fmt.Errorf("active %s, previous next %s", doc2.active, doc1.next)
		}
		return nil
	}())
	d.check("the retired key stays in the JWKS", func() error {
		for _, k := range doc2.kids {
			if k == doc1.active {
				return nil
			}
		}
		return fmt.Errorf("kid %s is gone", doc1.active)
	}())
	v, err := jwks.NewVerifier(ctx, jwks.VerifierConfig{Source: jwks.SecretSource(d.SM, arn), Algorithms: []string{jwks.ES256}})
	if err != nil {
		return err
	}
	var claims jwt.RegisteredClaims
	_, err = v.Parse(ctx, token, &claims)
	d.check("a token signed before the rotation still verifies after it", err)
	return nil
}

type jwtSummary struct {
	active, next string
	kids         []string
}

func (d *demo) jwtDoc(ctx context.Context, arn string) (jwtSummary, error) {
	raw, err := d.SecretValue(ctx, arn, rotation.StageCurrent)
	if err != nil {
		return jwtSummary{}, err
	}
	doc, err := jwks.ParseDocument(raw)
	if err != nil {
		return jwtSummary{}, err
	}
	set, err := jwks.ParseSet(mustJSON(doc.JWKS))
	if err != nil {
		return jwtSummary{}, err
	}
	s := jwtSummary{}
	if doc.Active != nil {
		s.active = shortKID(doc.Active.KID)
	}
	if doc.Next != nil {
		s.next = shortKID(doc.Next.KID)
	}
	for kid := range set {
		s.kids = append(s.kids, shortKID(kid))
	}
	sort.Strings(s.kids)
	return s, nil
}

func shortKID(k string) string {
	if len(k) > 10 {
		return k[:10]
	}
	return k
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// ---- API keys and webhook keys ----

func (d *demo) apikeyDemo(ctx context.Context) error {
	d.section("API keys with an overlap window (functions/apikeyrotate; verifiers keep only hashes)")
	caller, err := d.CreateSecret(ctx, "/demo/dev/api/partner-key", `{"schemaVersion":1,"kind":"apikey"}`)
	if err != nil {
		return err
	}
	verifier, err := d.CreateSecret(ctx, "/demo/dev/api/verifier", `{"schemaVersion":1,"kind":"apikey","keys":[]}`)
	if err != nil {
		return err
	}
	rie, err := d.startFunction("apikeyrotate", "APIKEY_VERIFIER_SECRET_ARN="+verifier, "APIKEY_OVERLAP=24h", "APIKEY_PREFIX=sk")
	if err != nil {
		return err
	}
	if !d.check("first rotation issues the first key", d.rotate(ctx, rie, "/demo/dev/api/partner-key (first key)", caller)) {
		return nil
	}
	first, _ := d.SecretValue(ctx, caller, rotation.StageCurrent)
	if !d.check("second rotation succeeds", d.rotate(ctx, rie, "/demo/dev/api/partner-key (rotation 2)", caller)) {
		return nil
	}
	second, _ := d.SecretValue(ctx, caller, rotation.StageCurrent)
	ring, raw, err := d.keyring(ctx, verifier)
	if err != nil {
		return err
	}
	k1, k2 := callerKey(first), callerKey(second)
	now := time.Now()
	id2, err := ring.Verify(k2, now)
	d.check(fmt.Sprintf("the new key %s verifies", id2), err)
	id1, err := ring.Verify(k1, now)
	d.check(fmt.Sprintf("the previous key %s still verifies during the overlap", id1), err)
	_, err = ring.Verify(k1, now.Add(25*time.Hour))
	d.check("the previous key fails after the overlap (24 h)", expectErr(err, "the previous key still verifies after the overlap"))
	d.check("the verifier secret holds no plaintext key", func() error {
		if strings.Contains(string(raw), k1) || strings.Contains(string(raw), k2) {
			return errors.New("plaintext key in the verifier secret")
		}
		return nil
	}())

	d.section("Webhook signing keys (same function, kind webhook)")
	wcaller, err := d.CreateSecret(ctx, "/demo/dev/webhooks/signing-key", `{"schemaVersion":1,"kind":"webhook"}`)
	if err != nil {
		return err
	}
	wverifier, err := d.CreateSecret(ctx, "/demo/dev/webhooks/verifier", `{"schemaVersion":1,"kind":"webhook","keys":[]}`)
	if err != nil {
		return err
	}
	wrie, err := d.startFunction("apikeyrotate", "APIKEY_VERIFIER_SECRET_ARN="+wverifier, "APIKEY_KIND=webhook", "APIKEY_OVERLAP=24h")
	if err != nil {
		return err
	}
	for i := 1; i <= 2; i++ {
		if !d.check(fmt.Sprintf("webhook rotation %d succeeds", i), d.rotate(ctx, wrie, fmt.Sprintf("/demo/dev/webhooks/signing-key (rotation %d)", i), wcaller)) {
			return nil
		}
	}
	prev, _ := d.SecretValue(ctx, wcaller, rotation.StagePrevious)
	wring, _, err := d.keyring(ctx, wverifier)
	if err != nil {
		return err
	}
	body := []byte(`{"event":"invoice.paid"}`)
	header := apikey.SignWebhook(apikey.NewKey(callerKey(prev)), time.Now(), body)
	_, err = wring.VerifySignature(header, body, time.Now(), apikey.DefaultTolerance)
	d.check("a webhook signed with the previous key verifies during the overlap", err)
	return nil
}

func callerKey(v []byte) string {
	var c struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal(v, &c)
	return c.Key
}

func (d *demo) keyring(ctx context.Context, verifier string) (*apikey.Keyring, []byte, error) {
	raw, err := d.SecretValue(ctx, verifier, rotation.StageCurrent)
	if err != nil {
		return nil, nil, err
	}
	doc, err := apikey.ParseVerifier(raw)
	if err != nil {
		return nil, nil, err
	}
	ring, err := apikey.NewKeyring(doc, nil)
	return ring, raw, err
}

// ---- notifications ----

func (d *demo) notifications(ctx context.Context) {
	d.section("Notifications received on the SQS queue subscribed to the SNS topic")
	counts := map[string]int{}
	total := 0
	for i := 0; i < 20; i++ {
		out, err := d.sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.queue), MaxNumberOfMessages: 10})
		if err != nil || len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			if n, ok := wire.ParseNotification(aws.ToString(m.Body)); ok {
				counts[n.Kind+" "+n.Event]++
				total++
			}
			_, _ = d.sqsc.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.queue), ReceiptHandle: m.ReceiptHandle})
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.line("      %-32s ×%d", k, counts[k])
	}
	d.check(fmt.Sprintf("%d notifications received, none of them a failure", total), func() error {
		if total == 0 {
			return errors.New("no notification arrived")
		}
		for k := range counts {
			if strings.HasSuffix(k, rotation.EventFailed) {
				return fmt.Errorf("a failure was notified: %s", k)
			}
		}
		return nil
	}())
}
