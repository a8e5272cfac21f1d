package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// logicalIDs are the functions' logical ids in the SAM template, the keys
// of events/env.json.
var logicalIDs = map[string]string{"dbrotate": "DbRotateFunction", "jwtrotate": "JwtRotateFunction", "apikeyrotate": "ApiKeyRotateFunction"}

// envFile reads the SAM --env-vars file: its global Parameters, then the
// function's own section, as KEY=VALUE.
func envFile(path, fn string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]map[string]string
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fnVars, ok := doc[logicalIDs[fn]]
	if !ok {
		return nil, fmt.Errorf("%s has no %s section", path, logicalIDs[fn])
	}
	merged := map[string]string{}
	for k, v := range doc["Parameters"] {
		merged[k] = v
	}
	for k, v := range fnVars {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+merged[k])
	}
	return out, nil
}

// setEnv replaces or adds KEY=VALUE in env.
func setEnv(env []string, key, value string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	return append(out, key+"="+value)
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// secretName is the name in a secret ARN (full or partial).
func secretName(arn string) string {
	_, name, ok := strings.Cut(arn, ":secret:")
	if !ok {
		return arn
	}
	return name
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seededInvoke starts a local stack (moto, and PostgreSQL for dbrotate),
// seeds it with the secret the sample events name, and runs the sample
// events of steps through the function under the runtime emulator, showing
// the labels after each. Steps before the first requested one run first,
// marked as preparation, so that the requested step has what it needs.
func seededInvoke(ctx context.Context, fn string, steps []rotation.Step, envPath string, extra []string, out io.Writer) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	events := map[rotation.Step][]byte{}
	var first rotation.Event
	for _, s := range rotation.Steps {
		p := filepath.Join(root, "events", fn, string(s)+".json")
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		ev, err := rotation.ParseEvent(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if first.SecretID == "" {
			first = ev
		} else if ev.SecretID != first.SecretID || ev.ClientRequestToken != first.ClientRequestToken {
			return fmt.Errorf("events/%s: the four steps must name the same secret and token", fn)
		}
		events[s] = raw
	}
	if envPath == "" {
		envPath = filepath.Join(root, "events", "env.json")
	}
	env, err := envFile(envPath, fn)
	if err != nil {
		return err
	}

	start := time.Now()
	say := func(format string, a ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	say("starting moto%s and building %s for the runtime emulator (the first build on a cold Go cache takes a minute)...", map[bool]string{true: " and PostgreSQL", false: ""}[fn == "dbrotate"], fn)
	pkg := "./functions/" + fn
	stack, err := testenv.StartStack(ctx, testenv.StackOptions{Postgres: fn == "dbrotate", RIE: true, Bootstraps: []string{pkg}})
	if err != nil {
		return err
	}
	defer stack.Stop()
	moto, pg, sm, bin := stack.Moto, stack.Postgres, stack.SM, stack.Bootstraps[pkg]
	say("moto at %s%s; %s built", moto.Endpoint, map[bool]string{true: fmt.Sprintf(", PostgreSQL at %s:%d", "localhost", portOf(pg)), false: ""}[pg != nil], fn)

	cfg, err := moto.AWSConfig(ctx)
	if err != nil {
		return err
	}
	name := secretName(first.SecretID)
	env = append(moto.Env(), env...)
	env = setEnv(env, "AWS_ENDPOINT_URL", moto.Endpoint)
	var value string
	switch fn {
	case "dbrotate":
		user, pw := "app_"+randomHex(4), randomHex(16)
		conn, err := pg.AdminConn(ctx, "postgres")
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", user, pw))
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("create the application role: %w", err)
		}
		v, _ := json.Marshal(map[string]any{"engine": "postgres", "host": "localhost", "port": pg.Port, "dbname": "postgres",
			"username": user, "password": pw, "sslrootcertpem": string(pg.CACertPEM)})
		value = string(v)
		say("seeded role %s in PostgreSQL (TLS verify-full; the server's CA travels in the secret's sslrootcertpem)", user)
	case "jwtrotate":
		key, err := kms.NewFromConfig(cfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("local invoke: JWT private keys")})
		if err != nil {
			return fmt.Errorf("create KMS key: %w", err)
		}
		env = setEnv(env, "JWT_KMS_KEY_ARN", aws.ToString(key.KeyMetadata.Arn))
		value = `{}`
		say("created KMS key %s (moto picks the key id: JWT_KMS_KEY_ARN from %s is replaced by it)", aws.ToString(key.KeyMetadata.Arn), filepath.Base(envPath))
	case "apikeyrotate":
		verifier := envValue(env, "APIKEY_VERIFIER_SECRET_ARN")
		kind := envValue(env, "APIKEY_KIND")
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(secretName(verifier)),
			SecretString: aws.String(fmt.Sprintf(`{"schemaVersion":1,"kind":%q,"keys":[]}`, kind))}); err != nil {
			return fmt.Errorf("create the verifier secret: %w", err)
		}
		value = fmt.Sprintf(`{"schemaVersion":1,"kind":%q}`, kind)
		say("created the verifier secret %s", secretName(verifier))
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env = setEnv(env, k, v)
	}
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		return fmt.Errorf("create secret %s: %w", name, err)
	}
	arn := aws.ToString(created.ARN)
	lambdaARN, err := moto.RegisterNoopLambda(ctx, "invoke-"+fn)
	if err != nil {
		return err
	}
	// What the service does before createSecret: the AWSPENDING placeholder
	// under the event's ClientRequestToken.
	if _, err := sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(first.ClientRequestToken),
		RotationLambdaARN: aws.String(lambdaARN), RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}, RotateImmediately: aws.Bool(true)}); err != nil {
		return fmt.Errorf("RotateSecret (the placeholder): %w", err)
	}
	say("seeded secret %s (%s); RotateSecret made the AWSPENDING placeholder %s", name, arn, first.ClientRequestToken)
	labels(ctx, sm, arn, first.ClientRequestToken, out)

	rie, err := testenv.StartRIE(bin, env)
	if err != nil {
		return err
	}
	defer rie.Stop()
	firstWanted := slices.Index(rotation.Steps, steps[0])
	for i, s := range rotation.Steps {
		if i < firstWanted {
			say("preparing: %s (events/%s/%s.json), so that %s has what it needs", s, fn, s, steps[0])
		} else if !slices.Contains(steps, s) {
			break
		} else {
			say("invoking %s with events/%s/%s.json", s, fn, s)
		}
		t0 := time.Now()
		body, err := rie.Invoke(ctx, events[s])
		if err != nil {
			fmt.Fprint(out, indent(rie.Logs(), "  function log | ", 30))
			return fmt.Errorf("%s failed: %w", s, describeFailure(err))
		}
		say("%s succeeded in %s %s", s, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(string(body)))
		labels(ctx, sm, arn, first.ClientRequestToken, out)
	}
	if slices.Contains(steps, rotation.StepFinish) {
		// What the service does after a successful finishSecret.
		if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn),
			VersionStage: aws.String(rotation.StagePending), RemoveFromVersionId: aws.String(first.ClientRequestToken)}); err != nil {
			return fmt.Errorf("remove AWSPENDING after finishSecret: %w", err)
		}
		say("the service removes AWSPENDING from the new version:")
		labels(ctx, sm, arn, first.ClientRequestToken, out)
	}
	say("done; everything started is stopped")
	return nil
}

func portOf(pg *testenv.Postgres) int {
	if pg == nil {
		return 0
	}
	return pg.Port
}

// labels prints the secret's versions and labels, marking the rotation's
// version.
func labels(ctx context.Context, sm *secretsmanager.Client, arn, token string, out io.Writer) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		fmt.Fprintf(out, "        labels: %v\n", err)
		return
	}
	ids := make([]string, 0, len(d.VersionIdsToStages))
	for id := range d.VersionIdsToStages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		mark := ""
		if id == token {
			mark = "  ← this rotation"
		}
		fmt.Fprintf(out, "        %-40s %s%s\n", id, strings.Join(d.VersionIdsToStages[id], ","), mark)
	}
}

// parseSteps reads --step: one step name or all.
func parseSteps(s string) ([]rotation.Step, error) {
	if s == "all" {
		return rotation.Steps, nil
	}
	for _, st := range rotation.Steps {
		if string(st) == s {
			return []rotation.Step{st}, nil
		}
	}
	return nil, fmt.Errorf("%w: --step must be createSecret, setSecret, testSecret, finishSecret or all", cli.ErrUsage)
}
