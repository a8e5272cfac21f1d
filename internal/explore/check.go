package explore

// Reading the world and proving the invariants after every action.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/rotation"
)

// holder returns the version id carrying label on secret i, or "".
func (w *World) holder(i int, label string) string {
	st, err := w.SM.Stages(w.secrets[i].arn)
	if err != nil {
		return ""
	}
	for id, labels := range st {
		if slices.Contains(labels, label) {
			return id
		}
	}
	return ""
}

// Value reads version id of secret arn ("" with no value).
func (w *World) Value(ctx context.Context, arn, id string) string {
	out, err := w.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)})
	if err != nil {
		return ""
	}
	return aws.ToString(out.SecretString)
}

// Current returns the AWSCURRENT version id and value of rotated secret i.
func (w *World) Current(ctx context.Context, i int) (string, string) {
	id := w.holder(i, rotation.StageCurrent)
	if id == "" {
		return "", ""
	}
	return id, w.Value(ctx, w.secrets[i].arn, id)
}

// Previous returns the value of rotated secret i's AWSPREVIOUS version, or "".
func (w *World) Previous(ctx context.Context, i int) string {
	id := w.holder(i, rotation.StagePrevious)
	if id == "" {
		return ""
	}
	return w.Value(ctx, w.secrets[i].arn, id)
}

// CurrentOf returns the AWSCURRENT version id and value of any secret.
func (w *World) CurrentOf(ctx context.Context, arn string) (string, string) {
	out, err := w.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent)})
	if err != nil {
		return "", ""
	}
	return aws.ToString(out.VersionId), aws.ToString(out.SecretString)
}

// Pending returns the id and value of rotated secret i's AWSPENDING version
// when a rotation is open (AWSPENDING on a version that is not AWSCURRENT).
func (w *World) Pending(ctx context.Context, i int) (string, string) {
	id := w.holder(i, rotation.StagePending)
	if id == "" || id == w.holder(i, rotation.StageCurrent) {
		return "", ""
	}
	return id, w.Value(ctx, w.secrets[i].arn, id)
}

// Violation is a broken invariant.
type Violation struct {
	Invariant string // short name: "current-works", "immutable", …
	Detail    string
}

func (v *Violation) Error() string { return v.Invariant + ": " + v.Detail }

// InvariantOf returns the name of the invariant err breaks, or "".
func InvariantOf(err error) string {
	var v *Violation
	if errors.As(err, &v) {
		return v.Invariant
	}
	return ""
}

// Violationf builds a *Violation.
func Violationf(invariant, format string, args ...any) error {
	return &Violation{Invariant: invariant, Detail: fmt.Sprintf(format, args...)}
}

// Check proves every invariant.
func (w *World) Check(ctx context.Context) error {
	for i, s := range w.secrets {
		if err := w.checkSecret(ctx, i, s); err != nil {
			return err
		}
	}
	w.mu.Lock()
	for id, n := range w.succeeded {
		if n > w.promoted[id] {
			w.mu.Unlock()
			return Violationf("one-success-per-promotion", "version %s: %d rotation.succeeded notifications for %d promotions", id, n, w.promoted[id])
		}
	}
	w.mu.Unlock()
	return w.subject.Check(ctx, w)
}

func (w *World) checkSecret(ctx context.Context, i int, s *rotated) error {
	st, err := w.SM.Stages(s.arn)
	if err != nil {
		return err
	}
	var currents, pendings []string
	for id, labels := range st {
		if slices.Contains(labels, rotation.StageCurrent) {
			currents = append(currents, id)
		}
		if slices.Contains(labels, rotation.StagePending) {
			pendings = append(pendings, id)
		}
	}
	sort.Strings(currents)
	if len(currents) != 1 {
		return Violationf("one-current", "secret #%d: AWSCURRENT on %v", i, currents)
	}
	if len(pendings) > 1 {
		return Violationf("one-pending", "secret #%d: AWSPENDING on %v", i, pendings)
	}
	vs, err := w.SM.Versions(s.arn)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if !v.HasValue {
			continue
		}
		val := w.Value(ctx, s.arn, v.ID)
		if old, ok := w.values[v.ID]; ok && old != val {
			return Violationf("immutable", "secret #%d: version %s had a value and it changed", i, v.ID)
		}
		w.values[v.ID] = val
	}
	cur := currents[0]
	curVal := w.values[cur]
	if curVal == "" {
		return Violationf("current-has-value", "secret #%d: AWSCURRENT is on version %s, which has no value", i, cur)
	}
	w.mu.Lock()
	tested := w.tested[cur] || w.exempt[cur]
	w.mu.Unlock()
	if !tested {
		return Violationf("promoted-tested", "secret #%d: AWSCURRENT is on version %s, which never passed testSecret", i, cur)
	}
	cerr := w.subject.Accepts(ctx, w, i, []byte(curVal))
	if cerr == nil {
		return nil
	}
	if pid, pval := w.Pending(ctx, i); pid != "" && pval != "" {
		perr := w.subject.Accepts(ctx, w, i, []byte(pval))
		if perr == nil {
			return nil
		}
		return Violationf("current-works", "secret #%d: the target accepts neither AWSCURRENT %s (%v) nor the open AWSPENDING %s (%v)", i, cur, cerr, pid, perr)
	}
	return Violationf("current-works", "secret #%d: the target refuses AWSCURRENT %s: %v", i, cur, cerr)
}
