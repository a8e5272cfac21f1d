package rotation

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// StageTested is the engine's private staging label: it sits on the version
// that last passed testSecret (not a configuration test), and finishSecret
// promotes a version only if it carries it.
//
// Why a label: the four steps of one rotation may run in different execution
// environments, so the proof "this token passed testSecret" has to live in
// Secrets Manager. A version's value never changes once written and the token
// is the version's id, so a label on that id says exactly "this value passed
// testSecret in the rotation whose token it is". Moving it costs one
// UpdateSecretVersionStage per rotation (none on a retried testSecret that
// finds it in place); finishSecret reads it from the DescribeSecret every step
// makes anyway. A label is on at most one version, so the marker never
// accumulates; it stays on the promoted version until the next rotation's
// testSecret moves it. Never attach it by hand: it would let finishSecret
// promote an untested value.
//
// How it holds up: a retried testSecret finds the label in place and moves
// nothing; a crash after the strategy's test but before the move leaves no
// label, and the retry tests again; a retried finishSecret finds the token
// already AWSCURRENT and promotes nothing. A configuration test
// (RotateImmediately=false, empty placeholder) moves no label, so that
// placeholder can never be promoted. A new RotateSecret's token carries no
// label until its own testSecret passes. An operator's PutSecretValue with
// VersionStages=[AWSPENDING] mid-rotation puts AWSPENDING on a version
// without the label: finishSecret refuses it, and the old token is no longer
// pending. One without stages moves AWSCURRENT to the operator's version
// while the tested token stays AWSPENDING: a later finishSecret of that
// token still promotes it (it was proven against the target) and the
// operator's version becomes AWSPREVIOUS — the service itself abandons such
// a rotation and sends no finishSecret. On moto the label behaves as on AWS
// (custom labels move with UpdateSecretVersionStage and show in
// DescribeSecret).
const StageTested = "ROTATION_TESTED"

// markTested moves StageTested to the token's version. Already there: done.
// A failed move (another environment moved it first, or the service applied
// the request and the SDK's retry of it failed) is checked against a fresh
// DescribeSecret: the label on the token counts as done.
func (r *run) markTested(ctx context.Context) error {
	token := r.ev.ClientRequestToken
	if slices.Contains(r.stages[token], StageTested) {
		return nil
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(r.arn),
		VersionStage:    aws.String(StageTested),
		MoveToVersionId: aws.String(token),
	}
	if holder := holderOf(r.stages, StageTested); holder != "" {
		in.RemoveFromVersionId = aws.String(holder)
	}
	err := Call(ctx, "secretsmanager:UpdateSecretVersionStage", func(ctx context.Context) error {
		_, err := r.e.cfg.Secrets.UpdateSecretVersionStage(ctx, in)
		return err
	})
	if err == nil {
		return nil
	}
	if d, derr := r.describe(ctx); derr == nil && slices.Contains(d.VersionIdsToStages[token], StageTested) {
		return nil
	}
	return classifyExternal("UpdateSecretVersionStage", err)
}

// requireTested refuses to promote the token unless it carries StageTested.
// The refusal changes nothing and says why: the placeholder is still empty
// (finishSecret straight after RotateSecret), or the value was never proven
// (finishSecret after createSecret or setSecret alone, or after a failed
// testSecret).
func (r *run) requireTested(ctx context.Context) error {
	token := r.ev.ClientRequestToken
	if slices.Contains(r.stages[token], StageTested) {
		return nil
	}
	pend, err := r.pendingVersion(ctx)
	if err != nil {
		return err
	}
	if pend == nil {
		return &Error{Class: ClassState, Step: string(r.ev.Step), Op: "finishSecret", Retryable: true,
			Msg: "refusing to promote version " + token + " of secret " + r.arn + ": it has no value (createSecret has not run for this rotation); nothing was changed. Run createSecret, setSecret and testSecret first, or let the service retry the rotation"}
	}
	return &Error{Class: ClassState, Step: string(r.ev.Step), Op: "finishSecret", Retryable: true,
		Msg: "refusing to promote version " + token + " of secret " + r.arn + ": it has not passed testSecret in this rotation (no " + StageTested + " label); nothing was changed. Run setSecret and testSecret first, or let the service retry the rotation"}
}

// probe is the read-only step StepProbe: it proves that the version named by
// the token, which must be AWSCURRENT, still authenticates in the target, by
// running the strategy's Test in its configuration-test mode with the current
// value as both current and pending. It moves no label and writes nothing;
// rotation need not be enabled.
func (r *run) probe(ctx context.Context, d *secretsmanager.DescribeSecretOutput) error {
	token := r.ev.ClientRequestToken
	stages, ok := d.VersionIdsToStages[token]
	if !ok {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "version %s is not a version of secret %s", token, r.arn)
	}
	if !slices.Contains(stages, StageCurrent) {
		return errorf(ClassState, r.ev.Step, "DescribeSecret", "version %s of secret %s is not AWSCURRENT (AWSCURRENT is on %s): the probe proves the current version only; pass its id", token, r.arn, holderOf(d.VersionIdsToStages, StageCurrent))
	}
	r.current = token
	r.locate(d)
	cur, err := r.currentVersion(ctx)
	if err != nil {
		return err
	}
	resp, err := r.e.cfg.Strategy.Test(ctx, &TestRequest{Secret: r.info, Token: token, Current: cur, Pending: cur, ConfigTest: true, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err != nil {
		return err
	}
	r.outcome = "probe-passed"
	return nil
}

// holderOf returns the version id carrying label, or "".
func holderOf(stages map[string][]string, label string) string {
	for id, st := range stages {
		if slices.Contains(st, label) {
			return id
		}
	}
	return ""
}
