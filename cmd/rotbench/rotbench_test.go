package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPercentileIsNearestRankAndMedianAveragesTheMiddlePair(t *testing.T) {
	var xs []float64
	for i := 20; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	if got := percentile(xs, 95); got != 19 {
		t.Errorf("p95 of 1..20 = %v, want 19 (the 19th smallest)", got)
	}
	if got := percentile(xs, 99); got != 20 {
		t.Errorf("p99 of 1..20 = %v, want 20", got)
	}
	if got := median(xs); got != 10.5 {
		t.Errorf("median of 1..20 = %v, want 10.5", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v, want 2", got)
	}
	if xs[0] != 20 {
		t.Error("percentile sorted its input in place")
	}
}

func TestWriteResultsReplacesOnlyTheTextBetweenTheMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	before := "# Benchmarks\n\nhand-written method\n\n"
	after := "\n\n## Notes\n\nhand-written notes\n"
	if err := os.WriteFile(path, []byte(before+markerBeginComment+"\nold figures\n"+markerEnd+after), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := markerBeginComment + "\nnew figures\n" + markerEnd + "\n"
	if err := writeResults(path, gen); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := before + markerBeginComment + "\nnew figures\n" + markerEnd + after
	if string(got) != want {
		t.Errorf("document:\n%s\nwant:\n%s", got, want)
	}
	// Twice gives the same document.
	if err := writeResults(path, gen); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); string(again) != want {
		t.Errorf("second write changed the document:\n%s", again)
	}
}

func TestWriteResultsAppendsToADocumentWithoutMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# Benchmarks\n\ntext\n"), 0o644)
	gen := markerBeginComment + "\nfigures\n" + markerEnd + "\n"
	if err := writeResults(path, gen); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "# Benchmarks\n\ntext\n\n"+gen {
		t.Errorf("document:\n%s", got)
	}
}

func TestParseMicroKeepsPackageNameAndEveryMetric(t *testing.T) {
	out := `goos: linux
pkg: github.com/rotation-suite/rotation/pkg/envelope
BenchmarkEnvelopeEncrypt/64B-2      	  371151	      5348 ns/op	  11.97 MB/s	    1568 B/op	       3 allocs/op
PASS
pkg: github.com/rotation-suite/rotation/pkg/apikey
BenchmarkVerify/sha256-2     	 1850110	      1021 ns/op	       0 B/op	       0 allocs/op
ok  	github.com/rotation-suite/rotation/pkg/apikey	5.732s
`
	rows := parseMicro(out)
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0]
	if r.pkg != "pkg/envelope" || r.name != "EnvelopeEncrypt/64B" || r.metrics["ns/op"] != "5348" || r.metrics["allocs/op"] != "3" || r.other() != "11.97 MB/s" {
		t.Errorf("row 0 = %+v other=%q", r, r.other())
	}
	if rows[1].pkg != "pkg/apikey" || rows[1].name != "Verify/sha256" || rows[1].metrics["B/op"] != "0" {
		t.Errorf("row 1 = %+v", rows[1])
	}
}

func TestWireOpNamesSecretsManagerAndKMSOperations(t *testing.T) {
	for target, want := range map[string]string{
		"secretsmanager.GetSecretValue": "secretsmanager:GetSecretValue",
		"TrentService.GenerateDataKey":  "kms:GenerateDataKey",
		"":                              "other:POST /",
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		if got := wireOp(r); got != want {
			t.Errorf("wireOp(%q) = %q, want %q", target, got, want)
		}
	}
}

func TestParseLogCountsOnlyTheFunctionsSessionsAndEveryFailedPasswordLogin(t *testing.T) {
	log := `2026-11-27 02:05:00.120 UTC [101] [unknown]@[unknown] LOG:  connection received: host=127.0.0.1 port=5000
2026-11-27 02:05:00.123 UTC [101] app@postgres LOG:  connection authorized: user=app database=postgres application_name=secrets-manager-rotation SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)
2026-11-27 02:05:00.130 UTC [102] app@postgres LOG:  connection authorized: user=app database=postgres application_name=rotbench-check SSL enabled (protocol=TLSv1.3)
2026-11-27 02:05:00.140 UTC [103] app@postgres FATAL:  password authentication failed for user "app"
2026-11-27 02:05:00.140 UTC [103] app@postgres DETAIL:  Connection matched pg_hba.conf line 3: "host  all all 127.0.0.1/32 scram-sha-256"
2026-11-27 02:05:00.150 UTC [101] app@postgres LOG:  statement: ALTER ROLE "app_clone" WITH PASSWORD 'SCRAM-SHA-256$4096:…'
`
	f := parseLog(log)
	if f.sessions != 1 || f.failedLogins != 1 {
		t.Errorf("parseLog = %+v, want 1 session of the function and 1 failed login", f)
	}
}

func TestParseInitTraceSumsClockTimeAndNamesTheSlowest(t *testing.T) {
	out := `init runtime @0.029 ms, 0.50 ms clock, 0 bytes, 0 allocs
init github.com/aws/aws-sdk-go-v2/service/sns/schemas @17 ms, 0.42 ms clock, 175464 bytes, 1055 allocs
init os @6.3 ms, 0.095 ms clock, 416 bytes, 9 allocs
{"level":"INFO","msg":"not an init line"}
`
	total, end, top := parseInitTrace(out, 2)
	if total < 1.014 || total > 1.016 {
		t.Errorf("total = %v, want 1.015", total)
	}
	if end < 17.41 || end > 17.43 {
		t.Errorf("end = %v, want 17.42 (the sns init started @17 ms and took 0.42)", end)
	}
	if len(top) != 2 || !strings.HasPrefix(top[0], "runtime ") || !strings.HasPrefix(top[1], "github.com/aws/aws-sdk-go-v2/service/sns/schemas ") {
		t.Errorf("top = %v", top)
	}
}

// TestFakeRuntimeReportsAFunctionErrorAsAnError plays the runtime client's
// side by hand: poll, then POST …/error.
func TestFakeRuntimeReportsAFunctionErrorAsAnError(t *testing.T) {
	rt, err := startFakeRuntime("fn")
	if err != nil {
		t.Fatal(err)
	}
	defer rt.stop()
	go func() {
		resp, err := http.Get("http://" + rt.Addr + "/2018-06-01/runtime/invocation/next")
		if err != nil {
			return
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		if resp.Header.Get("Lambda-Runtime-Deadline-Ms") == "" {
			id = "no-deadline-header"
		}
		resp.Body.Close()
		r, err := http.Post("http://"+rt.Addr+"/2018-06-01/runtime/invocation/"+id+"/error", "application/json",
			strings.NewReader(`{"errorType":"ConfigurationError","errorMessage":"JWT_KMS_KEY_ARN is not set"}`))
		if err == nil {
			r.Body.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = rt.Invoke(ctx, []byte(`{"Step":"createSecret"}`))
	var fe *functionError
	if !errors.As(err, &fe) || fe.Type != "ConfigurationError" || fe.Message != "JWT_KMS_KEY_ARN is not set" {
		t.Fatalf("Invoke error = %v, want the function's error", err)
	}
}

// TestFakeRuntimeRunsARealBootstrap builds the baseline function the way the
// rotation functions are built and drives it: ready on its first poll, one
// event answered through …/response, its memory readable afterwards.
func TestFakeRuntimeRunsARealBootstrap(t *testing.T) {
	bin, err := testenv.BuildBootstrap("./cmd/rotbench/baseline")
	testenv.Require(t, err)
	rt, err := startFakeRuntime(baselineName)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.stop()
	p, err := startBootstrap(bin, rt, lambdaEnv(rt, baselineName, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	ready, err := p.ready(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ready <= 0 {
		t.Errorf("ready after %v", ready)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body, err := rt.Invoke(ctx, []byte(`{}`))
	if err != nil {
		t.Fatalf("Invoke: %v (output: %s)", err, p.out.String())
	}
	if strings.TrimSpace(string(body)) != "null" {
		t.Errorf("response %q, want null", body)
	}
	if err := rt.waitIdle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	hwm, err := p.status("VmHWM")
	if err != nil || hwm <= 0 {
		t.Errorf("VmHWM = %d, %v", hwm, err)
	}
	if _, err := p.status("NoSuchKey"); err == nil {
		t.Error("a missing /proc status key gave no error")
	}
}

// TestGoalsJudgeEveryRotationAndSayWhatWasNotMeasured: a goal on calls per
// rotation is met only if no measured rotation exceeds it (one rotation with
// 10 calls misses "≤ 9" even when the median is 9), and a goal without its
// measurement is reported as not measured, never as met.
func TestGoalsJudgeEveryRotationAndSayWhatWasNotMeasured(t *testing.T) {
	rot := func(sm, connects int) sample {
		return sample{ops: map[string]int{"secretsmanager:DescribeSecret": sm, "postgres:connect": connects}, log: logFacts{sessions: connects}}
	}
	alt := &series{sub: &subject{key: "db-alternating", label: "alt"}}
	for range 19 {
		alt.samples = append(alt.samples, rot(goalSMAlternating, 3))
	}
	alt.samples = append(alt.samples, rot(goalSMAlternating+1, 3))
	r := &results{opts: options{concurrency: 8}, series: []*series{alt}}
	byGoal := map[string]goalRow{}
	for _, g := range r.goals() {
		byGoal[g.goal] = g
	}
	if g := byGoal["Secrets Manager calls per alternating-user database rotation, warm environment"]; g.verdict != verdictMissed {
		t.Errorf("one rotation over the goal: verdict %q (%s), want missed", g.verdict, g.figure)
	}
	if g := byGoal["Database connections per alternating-user rotation"]; g.verdict != verdictMet {
		t.Errorf("3 connections: verdict %q, want met", g.verdict)
	}
	for _, name := range []string{
		"Secrets Manager calls per single-user database rotation, warm environment",
		"Failed database logins on the happy path",
		"Cold start to ready for the first event: dbrotate",
		"Binary size, linux/arm64, stripped: jwtrotate",
		"Scale: AWSCURRENT credentials that log in afterwards",
	} {
		if g, ok := byGoal[name]; !ok || g.verdict != verdictMissing {
			t.Errorf("%s: verdict %q, want not measured", name, g.verdict)
		}
	}
}
