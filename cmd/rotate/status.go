package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// versionInfo is one version as the operator commands see it. Values are
// never kept: only whether the version has one.
type versionInfo struct {
	ID      string
	Stages  []string
	Created time.Time
	Empty   bool
}

// secretState is the operator's view of a secret's rotation.
type secretState struct {
	ARN, Name       string
	RotationEnabled bool
	LambdaARN       string
	LastRotated     time.Time
	NextRotation    time.Time
	Versions        []versionInfo
	Current         *versionInfo
	Pending         *versionInfo
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

func loadState(ctx context.Context, sm smClient, secret string) (*secretState, error) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return nil, explain("DescribeSecret", err)
	}
	s := &secretState{ARN: aws.ToString(d.ARN), Name: aws.ToString(d.Name), RotationEnabled: aws.ToBool(d.RotationEnabled),
		LambdaARN: aws.ToString(d.RotationLambdaARN), LastRotated: aws.ToTime(d.LastRotatedDate), NextRotation: aws.ToTime(d.NextRotationDate)}
	created := map[string]time.Time{}
	var next *string
	for {
		out, err := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(s.ARN), IncludeDeprecated: aws.Bool(false), NextToken: next})
		if err != nil {
			return nil, explain("ListSecretVersionIds", err)
		}
		for _, v := range out.Versions {
			created[aws.ToString(v.VersionId)] = aws.ToTime(v.CreatedDate)
		}
		if aws.ToString(out.NextToken) == "" || (next != nil && *next == *out.NextToken) {
			break
		}
		next = out.NextToken
	}
	for id, stages := range d.VersionIdsToStages {
		s.Versions = append(s.Versions, versionInfo{ID: id, Stages: stages, Created: created[id]})
	}
	sort.Slice(s.Versions, func(i, j int) bool { return s.Versions[i].Created.After(s.Versions[j].Created) })
	for i := range s.Versions {
		v := &s.Versions[i]
		if slices.Contains(v.Stages, rotation.StageCurrent) {
			s.Current = v
		}
		if slices.Contains(v.Stages, rotation.StagePending) {
			s.Pending = v
		}
	}
	if s.Stuck() {
		// Whether the pending version has a value; the value itself is
		// discarded at once.
		_, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.ARN), VersionId: aws.String(s.Pending.ID), VersionStage: aws.String(rotation.StagePending)})
		var nf *smtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			s.Pending.Empty = true
		case err != nil:
			return nil, explain("GetSecretValue (pending)", err)
		}
	}
	return s, nil
}

// explain turns an AWS error into one operator-readable line.
func explain(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("%s: %w", op, err)
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
	if !s.LastRotated.IsZero() {
		fmt.Fprintf(w, "last        %s (%s ago)\n", s.LastRotated.UTC().Format(time.RFC3339), now.Sub(s.LastRotated).Round(time.Second))
	}
	if !s.NextRotation.IsZero() {
		fmt.Fprintf(w, "next        %s\n", s.NextRotation.UTC().Format(time.RFC3339))
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

func cmdStatus(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	sm, err := c.secrets(ctx)
	if err != nil {
		return err
	}
	s, err := loadState(ctx, sm, pos[0])
	if err != nil {
		return err
	}
	s.print(out, time.Now())
	return nil
}
