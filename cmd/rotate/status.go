package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/operator"
)

// versionInfo is one version as the operator commands see it. Values are
// never kept: only whether the version has one.
type versionInfo struct {
	ID      string    `json:"versionId"`
	Stages  []string  `json:"stages"`
	Created time.Time `json:"created,omitzero"`
	Empty   bool      `json:"empty"`
}

// schedule is a secret's rotation rules.
type schedule struct {
	AfterDays  int64  `json:"automaticallyAfterDays,omitempty"`
	Expression string `json:"scheduleExpression,omitempty"`
	Window     string `json:"duration,omitempty"`
}

func (s schedule) String() string {
	var parts []string
	if s.AfterDays > 0 {
		parts = append(parts, fmt.Sprintf("every %d days", s.AfterDays))
	}
	if s.Expression != "" {
		parts = append(parts, s.Expression)
	}
	if s.Window != "" {
		parts = append(parts, "window "+s.Window)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// secretState is the operator's view of a secret's rotation.
type secretState struct {
	ARN             string        `json:"arn"`
	Name            string        `json:"name"`
	RotationEnabled bool          `json:"rotationEnabled"`
	LambdaARN       string        `json:"rotationLambdaArn,omitempty"`
	Schedule        schedule      `json:"schedule"`
	LastRotated     time.Time     `json:"lastRotated,omitzero"`
	NextRotation    time.Time     `json:"nextRotation,omitzero"`
	Versions        []versionInfo `json:"versions"`
	Current         *versionInfo  `json:"-"`
	Pending         *versionInfo  `json:"-"`
	// CurrentHasValue says whether GetSecretValue(AWSCURRENT) returns a
	// value; the value itself is discarded at once.
	CurrentHasValue bool `json:"currentHasValue"`
}

// Stuck says whether a rotation is stuck: AWSPENDING on a version other than
// AWSCURRENT. The next RotateSecret would fail with "a previous rotation
// isn't complete".
func (s *secretState) Stuck() bool {
	return s.Pending != nil && (s.Current == nil || s.Pending.ID != s.Current.ID)
}

// Why explains a stuck rotation.
func (s *secretState) Why(now time.Time) string {
	if !s.Stuck() {
		return ""
	}
	p := s.Pending
	age := now.Sub(p.Created).Round(time.Second)
	if p.Empty {
		return fmt.Sprintf("AWSPENDING is on version %s, created %s ago, which has no value: createSecret never completed (the function failed early: configuration, permissions, or it could not reach Secrets Manager). Check the function's log for that version id.", p.ID, age)
	}
	return fmt.Sprintf("AWSPENDING is on version %s, created %s ago, which has a value: createSecret ran but setSecret, testSecret or finishSecret failed on every retry. The function's log and the rotation.failed notification name the step and the error class.", p.ID, age)
}

// problems lists what is wrong with the secret's rotation, for status's
// exit code: a stuck rotation, or no usable AWSCURRENT.
func (s *secretState) problems(now time.Time) []string {
	var out []string
	if s.Stuck() {
		out = append(out, "stuck: "+s.Why(now))
	}
	switch {
	case s.Current == nil:
		out = append(out, "no version is labelled AWSCURRENT: applications reading the secret get ResourceNotFoundException")
	case !s.CurrentHasValue:
		out = append(out, fmt.Sprintf("AWSCURRENT (version %s) has no value: applications reading the secret get ResourceNotFoundException", s.Current.ID))
	}
	return out
}

func loadState(ctx context.Context, sm stateClient, secret string) (*secretState, error) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return nil, operator.Explain("DescribeSecret", err)
	}
	s := &secretState{ARN: aws.ToString(d.ARN), Name: aws.ToString(d.Name), RotationEnabled: aws.ToBool(d.RotationEnabled),
		LambdaARN: aws.ToString(d.RotationLambdaARN), LastRotated: aws.ToTime(d.LastRotatedDate), NextRotation: aws.ToTime(d.NextRotationDate)}
	if r := d.RotationRules; r != nil {
		s.Schedule = schedule{AfterDays: aws.ToInt64(r.AutomaticallyAfterDays), Expression: aws.ToString(r.ScheduleExpression), Window: aws.ToString(r.Duration)}
	}
	created, err := operator.VersionsCreated(ctx, sm, s.ARN)
	if err != nil {
		return nil, err
	}
	for id, stages := range d.VersionIdsToStages {
		s.Versions = append(s.Versions, versionInfo{ID: id, Stages: stages, Created: created[id]})
	}
	sort.Slice(s.Versions, func(i, j int) bool { return s.Versions[i].Created.After(s.Versions[j].Created) })
	for i := range s.Versions {
		v := &s.Versions[i]
		if slices.Contains(v.Stages, operator.StageCurrent) {
			s.Current = v
		}
		if slices.Contains(v.Stages, operator.StagePending) {
			s.Pending = v
		}
	}
	if s.Current != nil {
		if s.CurrentHasValue, err = operator.HasValue(ctx, sm, s.ARN, s.Current.ID, operator.StageCurrent); err != nil {
			return nil, err
		}
		s.Current.Empty = !s.CurrentHasValue
	}
	if s.Stuck() {
		ok, err := operator.HasValue(ctx, sm, s.ARN, s.Pending.ID, operator.StagePending)
		if err != nil {
			return nil, err
		}
		s.Pending.Empty = !ok
	}
	return s, nil
}

func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		return "in " + (-d).String()
	}
	return d.String() + " ago"
}

func (s *secretState) print(w io.Writer, now time.Time) {
	fmt.Fprintf(w, "secret      %s\n", s.ARN)
	en := "disabled"
	if s.RotationEnabled {
		en = "enabled"
	}
	fmt.Fprintf(w, "rotation    %s", en)
	if s.LambdaARN != "" {
		fmt.Fprintf(w, " via %s", s.LambdaARN)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "schedule    %s\n", s.Schedule)
	if s.LastRotated.IsZero() {
		fmt.Fprintln(w, "last        never rotated")
	} else {
		fmt.Fprintf(w, "last        %s (%s)\n", s.LastRotated.UTC().Format(time.RFC3339), ago(now, s.LastRotated))
	}
	if s.NextRotation.IsZero() {
		fmt.Fprintln(w, "next        none scheduled")
	} else {
		fmt.Fprintf(w, "next        %s (%s)\n", s.NextRotation.UTC().Format(time.RFC3339), ago(now, s.NextRotation))
	}
	switch {
	case s.Current == nil:
		fmt.Fprintln(w, "current     NO VERSION IS AWSCURRENT")
	case s.CurrentHasValue:
		fmt.Fprintf(w, "current     %s has a value\n", s.Current.ID)
	default:
		fmt.Fprintf(w, "current     %s HAS NO VALUE\n", s.Current.ID)
	}
	fmt.Fprintln(w, "versions:")
	for _, v := range s.Versions {
		c := ""
		if !v.Created.IsZero() {
			c = v.Created.UTC().Format(time.RFC3339)
		}
		extra := ""
		if v.Empty {
			extra = "  (no value)"
		}
		fmt.Fprintf(w, "  %-40s %-22s %s%s\n", v.ID, strings.Join(v.Stages, ","), c, extra)
	}
	if s.Stuck() {
		fmt.Fprintf(w, "STUCK: %s\n", s.Why(now))
		fmt.Fprintf(w, "       'rotate unstick %s' finishes it (resume); 'rotate unstick --mode discard' drops it once the function proves AWSCURRENT still authenticates.\n", s.Name)
	} else {
		fmt.Fprintln(w, "state       no rotation in progress")
	}
}

// statusJSON is `rotate status --output json`.
type statusJSON struct {
	*secretState
	CurrentVersion string   `json:"currentVersion,omitempty"`
	PendingVersion string   `json:"pendingVersion,omitempty"`
	Stuck          bool     `json:"stuck"`
	Why            string   `json:"why,omitempty"`
	Problems       []string `json:"problems"`
}

func cmdStatus(ctx context.Context, args []string, stdout, _ io.Writer) error {
	c := cli.New("rotate status", "SECRET [flags]",
		"Shows a secret's rotation: schedule, last and next rotation, versions and labels, whether AWSCURRENT has a value,\nand whether a rotation is stuck and why. Exits 3 when a rotation is stuck or AWSCURRENT has no value.", stdout)
	var a cli.AWS
	a.Register(c.Flags)
	var output cli.Output
	cli.RegisterOutput(c.Flags, &output, cli.Table, cli.JSON)
	pos, err := c.Parse(args, 1)
	if err != nil {
		return err
	}
	sm, err := secretsClient(ctx, &a)
	if err != nil {
		return err
	}
	return status(ctx, sm, pos[0], output, time.Now(), stdout)
}

func status(ctx context.Context, sm stateClient, secret string, output cli.Output, now time.Time, out io.Writer) error {
	s, err := loadState(ctx, sm, secret)
	if err != nil {
		return err
	}
	problems := s.problems(now)
	if output == cli.JSON {
		j := statusJSON{secretState: s, Stuck: s.Stuck(), Why: s.Why(now), Problems: append([]string{}, problems...)}
		if s.Current != nil {
			j.CurrentVersion = s.Current.ID
		}
		if s.Pending != nil {
			j.PendingVersion = s.Pending.ID
		}
		if err := cli.WriteJSON(out, j); err != nil {
			return err
		}
	} else {
		s.print(out, now)
	}
	if len(problems) > 0 {
		return &cli.Findings{Summary: strings.Join(problems, "; ")}
	}
	return nil
}
