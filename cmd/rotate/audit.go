package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/operator"
)

// Tags the audit reads on a secret.
const (
	TagCategory    = "rotation:category"     // database, api-key, jwt, webhook, oauth, external-api-key
	TagMaxAgeDays  = "rotation:max-age-days" // overrides the category's maximum age
	TagLastFailure = "rotation:last-failure" // a recorded last failure, shown as is
)

// defaultMaxAgeDays are the design's rotation periods per category.
var defaultMaxAgeDays = map[string]int{
	"database":         30,
	"api-key":          90,
	"jwt":              90,
	"webhook":          90,
	"oauth":            180,
	"external-api-key": 180,
}

// policy is the audit's rules: maximum age per category, how names map to
// categories when a secret has no category tag, and whether a
// customer-managed KMS key is required. The file form is JSON:
//
//	{"maxAgeDays": {"database": 30}, "defaultMaxAgeDays": 90,
//	 "rules": [{"namePrefix": "prod/database/", "category": "database"}],
//	 "requireCustomerManagedKey": true}
type policy struct {
	MaxAgeDays                map[string]int `json:"maxAgeDays"`
	DefaultMaxAgeDays         int            `json:"defaultMaxAgeDays"`
	Rules                     []policyRule   `json:"rules"`
	RequireCustomerManagedKey bool           `json:"requireCustomerManagedKey"`
}

type policyRule struct {
	NamePrefix string `json:"namePrefix"`
	Contains   string `json:"contains"`
	Category   string `json:"category"`
}

func defaultPolicy() policy {
	p := policy{MaxAgeDays: map[string]int{}, DefaultMaxAgeDays: 90}
	for k, v := range defaultMaxAgeDays {
		p.MaxAgeDays[k] = v
	}
	return p
}

// loadPolicy reads a policy file over the defaults. Unknown fields are
// refused so that a typo does not silently weaken the policy.
func loadPolicy(path string) (policy, error) {
	p := defaultPolicy()
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("%w: read --policy: %v", cli.ErrUsage, err)
	}
	var f policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return p, fmt.Errorf("%w: --policy %s: %v", cli.ErrUsage, path, err)
	}
	for k, v := range f.MaxAgeDays {
		if v <= 0 {
			return p, fmt.Errorf("%w: --policy %s: maxAgeDays[%s] must be positive", cli.ErrUsage, path, k)
		}
		p.MaxAgeDays[k] = v
	}
	if f.DefaultMaxAgeDays > 0 {
		p.DefaultMaxAgeDays = f.DefaultMaxAgeDays
	}
	for _, r := range f.Rules {
		if r.Category == "" || (r.NamePrefix == "" && r.Contains == "") {
			return p, fmt.Errorf("%w: --policy %s: a rule needs a category and a namePrefix or contains", cli.ErrUsage, path)
		}
		if _, ok := p.MaxAgeDays[r.Category]; !ok {
			return p, fmt.Errorf("%w: --policy %s: rule category %q has no maxAgeDays", cli.ErrUsage, path, r.Category)
		}
	}
	p.Rules = f.Rules
	p.RequireCustomerManagedKey = f.RequireCustomerManagedKey
	return p, nil
}

// auditRow is one secret in the report. It holds no secret value: ListSecrets
// returns none.
type auditRow struct {
	Name               string     `json:"name"`
	ARN                string     `json:"arn"`
	Category           string     `json:"category"`
	CategoryFrom       string     `json:"categoryFrom"` // tag, rule, default
	MaxAgeDays         int        `json:"maxAgeDays"`
	RotationEnabled    bool       `json:"rotationEnabled"`
	RotationLambdaARN  string     `json:"rotationLambdaArn,omitempty"`
	Schedule           string     `json:"schedule"`
	IntervalDays       float64    `json:"scheduleIntervalDays,omitempty"`
	LastRotated        *time.Time `json:"lastRotated,omitempty"`
	AgeDays            float64    `json:"ageDays"`
	Overdue            bool       `json:"overdue"`
	Stuck              bool       `json:"stuckPending"`
	LastFailure        string     `json:"lastFailure,omitempty"`
	KMSKey             string     `json:"kmsKey"`
	CustomerManagedKey bool       `json:"customerManagedKey"`
	Violations         []string   `json:"violations"`
}

type auditReport struct {
	Region     string     `json:"region,omitempty"`
	Generated  time.Time  `json:"generated"`
	Pages      int        `json:"pages"`
	Secrets    int        `json:"secrets"`
	Violations int        `json:"secretsWithViolations"`
	Rows       []auditRow `json:"rows"`
}

// listSecretsClient is what the audit uses of Secrets Manager.
type listSecretsClient interface {
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

func cmdAudit(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := cli.New("rotate audit", "[flags]",
		"Reports every secret in the region against the rotation policy: rotation enabled, rotation function, schedule against\n"+
			"the category's maximum age, last rotated, overdue, stuck AWSPENDING, a recorded last failure, customer-managed KMS\n"+
			"key or not. A secret's category comes from its "+TagCategory+" tag, else the policy file's rules, else the default\n"+
			"maximum age applies; "+TagMaxAgeDays+" overrides the age. Defaults: database 30 d, api-key / jwt / webhook 90 d,\n"+
			"oauth / external-api-key 180 d, anything else 90 d. Exits 3 when any secret violates the policy.", stdout)
	var a cli.AWS
	a.Register(c.Flags)
	var output cli.Output
	cli.RegisterOutput(c.Flags, &output, cli.Table, cli.JSON, cli.Markdown)
	policyFile := c.Flags.String("policy", "", "a JSON policy file (maxAgeDays, defaultMaxAgeDays, rules, requireCustomerManagedKey)")
	pageSize := c.Flags.Int("page-size", 100, "ListSecrets page size (1-100)")
	if _, err := c.Parse(args, 0); err != nil {
		return err
	}
	if *pageSize < 1 || *pageSize > 100 {
		return fmt.Errorf("%w: --page-size must be 1-100", cli.ErrUsage)
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	cfg, err := a.Config(ctx)
	if err != nil {
		return err
	}
	rep, err := audit(ctx, secretsmanager.NewFromConfig(cfg), pol, int32(*pageSize), time.Now())
	if err != nil {
		return err
	}
	rep.Region = cfg.Region
	if err := rep.write(stdout, output); err != nil {
		return err
	}
	if rep.Violations > 0 {
		return &cli.Findings{Summary: fmt.Sprintf("%d of %d secrets violate the rotation policy", rep.Violations, rep.Secrets)}
	}
	return nil
}

// audit lists every secret (all pages) and judges each against the policy.
func audit(ctx context.Context, sm listSecretsClient, pol policy, pageSize int32, now time.Time) (*auditReport, error) {
	rep := &auditReport{Generated: now.UTC(), Rows: []auditRow{}}
	p := secretsmanager.NewListSecretsPaginator(sm, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(pageSize)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, operator.Explain("ListSecrets", err)
		}
		rep.Pages++
		for _, s := range page.SecretList {
			rep.Rows = append(rep.Rows, judge(s, pol, now))
		}
	}
	sort.Slice(rep.Rows, func(i, j int) bool { return rep.Rows[i].Name < rep.Rows[j].Name })
	rep.Secrets = len(rep.Rows)
	for _, r := range rep.Rows {
		if len(r.Violations) > 0 {
			rep.Violations++
		}
	}
	return rep, nil
}

var rateExpr = regexp.MustCompile(`^rate\((\d+) (hour|hours|day|days)\)$`)

// intervalDays reads a schedule's interval; 0 when it cannot be told (a
// cron expression).
func intervalDays(r *smtypes.RotationRulesType) float64 {
	if r == nil {
		return 0
	}
	if d := aws.ToInt64(r.AutomaticallyAfterDays); d > 0 {
		return float64(d)
	}
	if m := rateExpr.FindStringSubmatch(strings.TrimSpace(aws.ToString(r.ScheduleExpression))); m != nil {
		n, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "hour") {
			return float64(n) / 24
		}
		return float64(n)
	}
	return 0
}

// customerManaged says whether a secret's KMS key is the customer's own: an
// empty key id or the alias aws/secretsmanager is the AWS managed key.
func customerManaged(keyID string) bool {
	return keyID != "" && keyID != "alias/aws/secretsmanager" && !strings.HasSuffix(keyID, ":alias/aws/secretsmanager")
}

func judge(s smtypes.SecretListEntry, pol policy, now time.Time) auditRow {
	tags := map[string]string{}
	for _, t := range s.Tags {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	r := auditRow{Name: aws.ToString(s.Name), ARN: aws.ToString(s.ARN), RotationEnabled: aws.ToBool(s.RotationEnabled),
		RotationLambdaARN: aws.ToString(s.RotationLambdaARN), KMSKey: aws.ToString(s.KmsKeyId), LastFailure: tags[TagLastFailure], Violations: []string{}}
	if r.KMSKey == "" {
		r.KMSKey = "aws/secretsmanager"
	}
	r.CustomerManagedKey = customerManaged(aws.ToString(s.KmsKeyId))

	// Category and maximum age.
	r.Category, r.CategoryFrom = "", "default"
	if c := strings.TrimSpace(tags[TagCategory]); c != "" {
		r.Category, r.CategoryFrom = c, "tag"
	} else {
		for _, rule := range pol.Rules {
			if (rule.NamePrefix != "" && strings.HasPrefix(r.Name, rule.NamePrefix)) || (rule.Contains != "" && strings.Contains(r.Name, rule.Contains)) {
				r.Category, r.CategoryFrom = rule.Category, "rule"
				break
			}
		}
	}
	r.MaxAgeDays = pol.DefaultMaxAgeDays
	if d, ok := pol.MaxAgeDays[r.Category]; ok {
		r.MaxAgeDays = d
	} else if r.Category != "" {
		r.Violations = append(r.Violations, fmt.Sprintf("unknown category %q (the default %d days applies)", r.Category, pol.DefaultMaxAgeDays))
	}
	if v := tags[TagMaxAgeDays]; v != "" {
		if d, err := strconv.Atoi(v); err == nil && d > 0 {
			r.MaxAgeDays = d
		} else {
			r.Violations = append(r.Violations, fmt.Sprintf("tag %s=%q is not a positive number of days", TagMaxAgeDays, v))
		}
	}
	if r.Category == "" {
		r.Category = "-"
	}

	// Schedule.
	r.Schedule = "none"
	if rr := s.RotationRules; rr != nil {
		r.Schedule = schedule{AfterDays: aws.ToInt64(rr.AutomaticallyAfterDays), Expression: aws.ToString(rr.ScheduleExpression), Window: aws.ToString(rr.Duration)}.String()
	}
	r.IntervalDays = intervalDays(s.RotationRules)
	switch {
	case !r.RotationEnabled:
		r.Violations = append(r.Violations, "rotation is disabled")
	case r.IntervalDays > float64(r.MaxAgeDays):
		r.Violations = append(r.Violations, fmt.Sprintf("schedule (every %g days) is longer than the maximum age (%d days)", r.IntervalDays, r.MaxAgeDays))
	}

	// Age: since the last rotation, else since creation.
	since := aws.ToTime(s.CreatedDate)
	if s.LastRotatedDate != nil {
		t := aws.ToTime(s.LastRotatedDate)
		r.LastRotated = &t
		since = t
	}
	if !since.IsZero() {
		r.AgeDays = float64(int(now.Sub(since).Hours()/24*10)) / 10
		if now.Sub(since) > time.Duration(r.MaxAgeDays)*24*time.Hour {
			r.Overdue = true
			what := "last rotated"
			if r.LastRotated == nil {
				what = "never rotated; created"
			}
			r.Violations = append(r.Violations, fmt.Sprintf("overdue: %s %.0f days ago (maximum %d)", what, now.Sub(since).Hours()/24, r.MaxAgeDays))
		}
	}

	// Stuck: AWSPENDING on a version that is not AWSCURRENT.
	for id, stages := range s.SecretVersionsToStages {
		if slices.Contains(stages, operator.StagePending) && !slices.Contains(stages, operator.StageCurrent) {
			r.Stuck = true
			r.Violations = append(r.Violations, fmt.Sprintf("stuck: AWSPENDING on version %s ('rotate status %s' says why)", id, r.Name))
		}
	}
	if pol.RequireCustomerManagedKey && !r.CustomerManagedKey {
		r.Violations = append(r.Violations, "encrypted with the AWS managed key; the policy requires a customer-managed KMS key")
	}
	return r
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r auditRow) last() string {
	if r.LastRotated == nil {
		return "never"
	}
	return r.LastRotated.UTC().Format("2006-01-02")
}

func (rep *auditReport) write(w io.Writer, o cli.Output) error {
	switch o {
	case cli.JSON:
		return cli.WriteJSON(w, rep)
	case cli.Markdown:
		fmt.Fprintf(w, "# Rotation compliance report\n\nGenerated %s", rep.Generated.Format(time.RFC3339))
		if rep.Region != "" {
			fmt.Fprintf(w, " for %s", rep.Region)
		}
		fmt.Fprintf(w, ": %d secrets, %d with violations.\n\n", rep.Secrets, rep.Violations)
		fmt.Fprintln(w, "| Secret | Category | Max age (d) | Rotation | Function | Schedule | Last rotated | Age (d) | Overdue | Stuck | Last failure | Customer KMS key | Violations |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
		md := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
		for _, r := range rep.Rows {
			fn := r.RotationLambdaARN
			if fn == "" {
				fn = "-"
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n", md(r.Name), md(r.Category), r.MaxAgeDays,
				map[bool]string{true: "enabled", false: "disabled"}[r.RotationEnabled], md(fn), md(r.Schedule), r.last(), r.AgeDays,
				yesNo(r.Overdue), yesNo(r.Stuck), md(orDash(r.LastFailure)), yesNo(r.CustomerManagedKey), md(orDash(strings.Join(r.Violations, "; "))))
		}
		return nil
	default:
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SECRET\tCATEGORY\tMAX\tROTATION\tSCHEDULE\tLAST\tAGE\tOVERDUE\tSTUCK\tCMK\tVIOLATIONS")
		for _, r := range rep.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%dd\t%s\t%s\t%s\t%.1fd\t%s\t%s\t%s\t%s\n", r.Name, r.Category, r.MaxAgeDays,
				map[bool]string{true: "enabled", false: "disabled"}[r.RotationEnabled], r.Schedule, r.last(), r.AgeDays,
				yesNo(r.Overdue), yesNo(r.Stuck), yesNo(r.CustomerManagedKey), orDash(strings.Join(r.Violations, "; ")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d secrets, %d with violations (%d ListSecrets pages)\n", rep.Secrets, rep.Violations, rep.Pages)
		for _, r := range rep.Rows {
			if r.LastFailure != "" {
				fmt.Fprintf(w, "last failure recorded on %s: %s\n", r.Name, r.LastFailure)
			}
		}
		return nil
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
