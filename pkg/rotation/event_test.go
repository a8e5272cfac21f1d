package rotation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

func TestParseEventIgnoresUnknownFieldsAndKeepsTheRotationToken(t *testing.T) {
	ev, err := rotation.ParseEvent([]byte(`{"Step":"setSecret","SecretId":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x","ClientRequestToken":"abc","RotationToken":"rt","Extra":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Step != rotation.StepSet || ev.ClientRequestToken != "abc" || ev.RotationToken != "rt" {
		t.Fatalf("%+v", ev)
	}
}

func TestAnInvalidRotationTokenIsRejectedWithoutEchoingIt(t *testing.T) {
	_, err := rotation.ParseEvent([]byte(`{"Step":"setSecret","SecretId":"s","ClientRequestToken":"abc","RotationToken":"secret\ttoken"}`))
	if err == nil || strings.Contains(err.Error(), "secret\ttoken") || strings.Contains(err.Error(), "token\"") {
		t.Fatalf("got %v", err)
	}
}

func TestSecretValueRedactsItselfInEveryFormat(t *testing.T) {
	v := rotation.SecretValue("hunter2-hunter2")
	for _, s := range []string{v.String(), v.GoString(), fmtAll(v)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("leaked: %s", s)
		}
	}
}

func TestRedactorRedactsJSONLeavesButNotIdentifiers(t *testing.T) {
	r := rotation.NewRedactor()
	r.AddValue([]byte(`{"username":"app_user","password":"s3cr3t-value","nested":{"key":"another-secret"}}`))
	got := r.Redact("login app_user with s3cr3t-value failed; another-secret too")
	if strings.Contains(got, "s3cr3t-value") || strings.Contains(got, "another-secret") || !strings.Contains(got, "app_user") {
		t.Fatalf("got %q", got)
	}
}

func TestRateIntervalReadsRateExpressionsAndIgnoresCron(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"rate(90 days)": 90 * 24 * time.Hour, "rate(1 day)": 24 * time.Hour, "rate(4 hours)": 4 * time.Hour,
		"cron(0 16 1,15 * ? *)": 0, "rate(0 days)": 0, "rate(5 minutes)": 0, "": 0,
	} {
		if got := rotation.RateInterval(expr); got != want {
			t.Errorf("%q: got %v, want %v", expr, got, want)
		}
	}
}
