package rotation

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// This file holds finishSecret: the promotion of the tested pending version
// to AWSCURRENT and the strategy's after-finish action.

func (r *run) finish(ctx context.Context) error {
	// The token is AWSPENDING and not AWSCURRENT (checked in step). Promote
	// it only with the proof that it passed testSecret (and so has a value).
	if err := r.requireTested(ctx); err != nil {
		return err
	}
	var attempts attemptCounter
	err := Call(ctx, "secretsmanager:UpdateSecretVersionStage", func(ctx context.Context) error {
		_, err := r.e.cfg.Secrets.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId:            aws.String(r.arn),
			VersionStage:        aws.String(StageCurrent),
			MoveToVersionId:     aws.String(r.ev.ClientRequestToken),
			RemoveFromVersionId: aws.String(r.current),
		}, attempts.option)
		return err
	})
	if err != nil {
		d, derr := r.describe(ctx)
		if derr != nil || !slices.Contains(d.VersionIdsToStages[r.ev.ClientRequestToken], StageCurrent) {
			return classifyExternal("UpdateSecretVersionStage", err)
		}
		if attempts.n() <= 1 {
			// The first and only request was refused because another
			// execution environment promoted the token meanwhile: that
			// promotion is its, and so are its notification and hook.
			r.outcome = "noop"
			r.e.log.InfoContext(ctx, "version became AWSCURRENT in another execution environment; nothing to do", "secretArn", r.arn, "versionId", r.ev.ClientRequestToken)
			return nil
		}
		// The service applied an earlier attempt of this very call and the
		// answer was lost (the SDK's retry then found AWSCURRENT moved):
		// this invocation's promotion.
	}
	r.promoted = true
	r.outcome = "done"
	fin, ok := r.e.cfg.Strategy.(Finisher)
	if !ok {
		return nil
	}
	// The hook runs after the promotion, which stands whatever it does. A
	// failure fails the step as retryable: the service retries the rotation,
	// and the retried finishSecret (token current, AWSPENDING still on it)
	// runs the hook again.
	return r.afterFinish(ctx, fin)
}

func (r *run) afterFinish(ctx context.Context, fin Finisher) error {
	cur, err := r.e.readVersion(ctx, r.arn, r.ev.ClientRequestToken, "")
	if err != nil {
		return err
	}
	prev, err := r.e.readVersion(ctx, r.arn, r.current, "")
	if err != nil {
		return err
	}
	if cur == nil || prev == nil {
		return errors.New("a promoted version has no value")
	}
	r.red.AddValue(cur.Value)
	r.red.AddValue(prev.Value)
	resp, err := fin.AfterFinish(ctx, &FinishRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Previous: prev, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err != nil {
		re := r.classify(err).(*Error)
		re.Retryable = true
		re.Msg = "AWSCURRENT was moved to the new version, but the after-finish action failed and will be retried: " + re.Msg
		return re
	}
	return nil
}
