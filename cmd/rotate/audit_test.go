package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/testenv"
)

func entry(name string, tags map[string]string, enabled bool, days int64, last time.Time) smtypes.SecretListEntry {
	e := smtypes.SecretListEntry{Name: aws.String(name), ARN: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name + "-AbCdEf"),
		RotationEnabled: aws.Bool(enabled), CreatedDate: aws.Time(last)}
	if days > 0 {
		e.RotationRules = &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(days)}
	}
	if !last.IsZero() {
		e.LastRotatedDate = aws.Time(last)
	}
	for k, v := range tags {
		e.Tags = append(e.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return e
}

func TestAuditJudgesEachSecretAgainstItsCategorysMaximumAge(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	pol := defaultPolicy()
	pol.Rules = []policyRule{{NamePrefix: "prod/database/", Category: "database"}}
	for _, tc := range []struct {
		name string
		e    smtypes.SecretListEntry
		want []string // substrings of the violations; none: compliant
	}{
		{"compliant database", entry("db1", map[string]string{TagCategory: "database"}, true, 30, now.Add(-10*24*time.Hour)), nil},
		{"database schedule too long", entry("db2", map[string]string{TagCategory: "database"}, true, 90, now.Add(-10*24*time.Hour)), []string{"longer than the maximum age (30 days)"}},
		{"database by name rule, overdue", entry("prod/database/app", nil, true, 30, now.Add(-40*24*time.Hour)), []string{"overdue: last rotated 40 days ago (maximum 30)"}},
		{"oauth allows 180 days", entry("oauth1", map[string]string{TagCategory: "oauth"}, true, 180, now.Add(-100*24*time.Hour)), nil},
		{"rotation disabled", entry("jwt1", map[string]string{TagCategory: "jwt"}, false, 0, now.Add(-1*24*time.Hour)), []string{"rotation is disabled"}},
		{"tag overrides the age", entry("api1", map[string]string{TagCategory: "api-key", TagMaxAgeDays: "7"}, true, 30, now.Add(-1*24*time.Hour)), []string{"longer than the maximum age (7 days)"}},
		{"bad age tag", entry("api2", map[string]string{TagCategory: "api-key", TagMaxAgeDays: "soon"}, true, 30, now), []string{"not a positive number"}},
		{"unknown category", entry("x1", map[string]string{TagCategory: "dtabase"}, true, 30, now), []string{`unknown category "dtabase"`}},
		{"never rotated, created long ago", func() smtypes.SecretListEntry {
			e := entry("webhook1", map[string]string{TagCategory: "webhook"}, true, 30, time.Time{})
			e.CreatedDate = aws.Time(now.Add(-200 * 24 * time.Hour))
			return e
		}(), []string{"never rotated; created 200 days ago"}},
		{"stuck", func() smtypes.SecretListEntry {
			e := entry("db3", map[string]string{TagCategory: "database"}, true, 30, now)
			e.SecretVersionsToStages = map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}
			return e
		}(), []string{"stuck: AWSPENDING on version v2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := judge(tc.e, pol, now)
			if len(tc.want) == 0 && len(r.Violations) > 0 {
				t.Fatalf("want compliant, got %v", r.Violations)
			}
			joined := strings.Join(r.Violations, "; ")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Fatalf("violations %q lack %q", joined, w)
				}
			}
		})
	}
	// The customer-managed key requirement.
	pol.RequireCustomerManagedKey = true
	e := entry("db4", map[string]string{TagCategory: "database"}, true, 30, now)
	if r := judge(e, pol, now); r.CustomerManagedKey || !strings.Contains(strings.Join(r.Violations, ";"), "customer-managed") {
		t.Fatalf("AWS managed key not flagged: %+v", r)
	}
	e.KmsKeyId = aws.String("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
	if r := judge(e, pol, now); !r.CustomerManagedKey || len(r.Violations) > 0 {
		t.Fatalf("customer key flagged: %+v", r)
	}
}

func TestAuditPolicyFileRefusesTyposAndUnknownCategories(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"typo.json":     `{"maxAgeDay": {"database": 7}}`,
		"negative.json": `{"maxAgeDays": {"database": -1}}`,
		"rule.json":     `{"rules": [{"namePrefix": "x/", "category": "nope"}]}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadPolicy(p); cli.Code(err) != cli.ExitUsage {
			t.Fatalf("%s: want a usage error, got %v", name, err)
		}
	}
	p := filepath.Join(dir, "ok.json")
	_ = os.WriteFile(p, []byte(`{"maxAgeDays": {"database": 14, "partner": 60}, "rules": [{"contains": "/partner/", "category": "partner"}], "requireCustomerManagedKey": true}`), 0o600)
	pol, err := loadPolicy(p)
	if err != nil || pol.MaxAgeDays["database"] != 14 || pol.MaxAgeDays["jwt"] != 90 || pol.MaxAgeDays["partner"] != 60 || !pol.RequireCustomerManagedKey {
		t.Fatalf("%v %+v", err, pol)
	}
}

// The audit reads every page of ListSecrets: 160 secrets, 50 a page on
// moto, every one judged, violations make the exit code 3, and each output
// form carries them.
func TestAuditReadsEveryPageOnMotoAndExits3OnAViolation(t *testing.T) {
	m, err := testenv.StartMoto() // its own moto: the audit sees every secret in the region
	testenv.Require(t, err)
	defer m.Stop()
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg)
	const n = 160
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cat := []string{"database", "jwt", "api-key", "webhook", "oauth"}[i%5]
			_, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprintf("audit/%s/%03d", cat, i)),
				SecretString: aws.String(`{"password":"audit-secret-value"}`), Tags: []smtypes.Tag{{Key: aws.String(TagCategory), Value: aws.String(cat)}}})
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit(ctx, sm, defaultPolicy(), 50, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Secrets != n || rep.Pages < 4 {
		t.Fatalf("saw %d secrets in %d pages, want %d in at least 4", rep.Secrets, rep.Pages, n)
	}
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		if seen[r.Name] {
			t.Fatalf("%s listed twice", r.Name)
		}
		seen[r.Name] = true
		if r.CategoryFrom != "tag" || !strings.Contains(strings.Join(r.Violations, ";"), "rotation is disabled") {
			t.Fatalf("%+v", r)
		}
	}
	// Through the command: every output form, exit 3.
	for _, o := range []string{"table", "json", "markdown"} {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"audit", "--output", o, "--endpoint-url", m.Endpoint, "--region", testenv.Region}, &out, &errOut)
		if code != cli.ExitFindings {
			t.Fatalf("%s: exit %d, want 3\n%s", o, code, errOut.String())
		}
		s := out.String()
		if strings.Contains(s, "audit-secret-value") {
			t.Fatal("the audit printed a secret value")
		}
		switch o {
		case "json":
			var j auditReport
			if err := json.Unmarshal(out.Bytes(), &j); err != nil || j.Secrets != n || j.Violations != n {
				t.Fatalf("json: %v %d %d", err, j.Secrets, j.Violations)
			}
		case "markdown":
			if !strings.Contains(s, "| audit/database/000 | database | 30 |") {
				t.Fatalf("markdown:\n%.600s", s)
			}
		default:
			if !strings.Contains(s, fmt.Sprintf("%d secrets, %d with violations", n, n)) {
				t.Fatalf("table:\n%.600s", s)
			}
		}
	}
}
