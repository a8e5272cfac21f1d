package rotation

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// This file holds createSecret, setSecret and testSecret, and the reads of
// the rotated secret's versions they share with finishSecret (finish.go).

func (r *run) currentVersion(ctx context.Context) (*Version, error) {
	v, err := r.e.readVersion(ctx, r.arn, r.current, StageCurrent)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errorf(ClassState, r.ev.Step, "GetSecretValue", "the AWSCURRENT version %s of secret %s has no value", r.current, r.arn)
	}
	r.red.AddValue(v.Value)
	return v, nil
}

// pendingVersion returns the pending value, or nil if the placeholder is empty.
func (r *run) pendingVersion(ctx context.Context) (*Version, error) {
	v, err := r.e.readVersion(ctx, r.arn, r.ev.ClientRequestToken, StagePending)
	if v != nil {
		r.red.AddValue(v.Value)
	}
	return v, err
}

func (r *run) create(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend != nil {
		r.outcome = "pending-exists"
		return nil
	}
	resp, err := r.e.cfg.Strategy.Create(ctx, &CreateRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if err != nil {
		return err
	}
	if resp == nil || len(resp.Value) == 0 {
		return errorf(ClassDependency, r.ev.Step, r.e.cfg.Strategy.Kind()+":create", "the strategy returned no value")
	}
	r.red.AddValue(resp.Value)
	r.addReport(resp.Report)
	if len(resp.Value) > maxSecretValue {
		return errorf(ClassInput, r.ev.Step, "PutSecretValue", "the new value is %d bytes, more than Secrets Manager's 65536", len(resp.Value))
	}
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(r.arn),
		ClientRequestToken: aws.String(r.ev.ClientRequestToken),
		SecretString:       aws.String(string(resp.Value)),
		VersionStages:      []string{StagePending},
	}
	if r.ev.RotationToken != "" {
		in.RotationToken = aws.String(r.ev.RotationToken)
	}
	err = Call(ctx, "secretsmanager:PutSecretValue", func(ctx context.Context) error {
		_, err := r.e.cfg.Secrets.PutSecretValue(ctx, in)
		return err
	})
	if isAPIError(err, "ResourceExistsException") {
		// Another attempt stored a value under this token first: accept it
		// only if it is the same value.
		r.e.cache.forget(r.arn, r.ev.ClientRequestToken)
		stored, rerr := r.pendingVersion(ctx)
		if rerr != nil {
			return rerr
		}
		if stored != nil && string(stored.Value) == string(resp.Value) {
			r.outcome = "pending-exists"
			return nil
		}
		r.outcome = "pending-exists"
		return newError(ClassState, string(r.ev.Step), "PutSecretValue", "version "+r.ev.ClientRequestToken+" already holds a different value: the rotation token was reused with a different value; start a new rotation", nil)
	}
	if err != nil {
		return classifyExternal("PutSecretValue", err)
	}
	r.e.cache.put(r.arn, &Version{ID: r.ev.ClientRequestToken, Value: SecretValue(resp.Value)})
	r.started = true
	r.outcome = "done"
	return nil
}

// bothVersions reads the current version (which must have a value) and the
// pending one (nil while the placeholder is empty).
func (r *run) bothVersions(ctx context.Context) (cur, pend *Version, err error) {
	if cur, err = r.currentVersion(ctx); err != nil {
		return nil, nil, err
	}
	pend, err = r.pendingVersion(ctx)
	return cur, pend, err
}

func (r *run) set(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend == nil {
		return &Error{Class: ClassState, Step: string(r.ev.Step), Op: "GetSecretValue", Retryable: true,
			Msg: "the AWSPENDING version " + r.ev.ClientRequestToken + " has no value: createSecret has not completed"}
	}
	resp, err := r.e.cfg.Strategy.Set(ctx, &SetRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Pending: pend, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err == nil {
		r.outcome = "done"
	}
	return err
}

func (r *run) test(ctx context.Context) error {
	cur, pend, err := r.bothVersions(ctx)
	if err != nil {
		return err
	}
	if pend == nil {
		// RotateImmediately=false: the service tests the configuration
		// against an empty pending version. Test the current value instead.
		r.configTest = true
		pend = cur
	}
	resp, err := r.e.cfg.Strategy.Test(ctx, &TestRequest{Secret: r.info, Token: r.ev.ClientRequestToken, Current: cur, Pending: pend, ConfigTest: r.configTest, Store: r.store(), Redact: r.red, Now: r.e.cfg.Now()})
	if resp != nil {
		r.addReport(resp.Report)
	}
	if err != nil {
		return err
	}
	if r.configTest {
		r.outcome = "config-test"
		return nil
	}
	// The proof finishSecret requires: the tested version carries the
	// private label StageTested.
	if err := r.markTested(ctx); err != nil {
		return err
	}
	r.outcome = "done"
	return nil
}

func (r *run) addReport(rep Report) {
	r.report.Warnings = append(r.report.Warnings, rep.Warnings...)
	for k, v := range rep.Details {
		if r.report.Details == nil {
			r.report.Details = map[string]string{}
		}
		r.report.Details[k] = v
	}
}

// readVersion reads one version of a secret, from the cache when its id is
// known. It returns nil, nil when the version has no value (the empty
// placeholder) or does not exist. stage, when set, must be on the version.
func (e *Engine) readVersion(ctx context.Context, arn, versionID, stage string) (*Version, error) {
	if versionID != "" {
		if v := e.cache.get(arn, versionID); v != nil {
			return v, nil
		}
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	var out *secretsmanager.GetSecretValueOutput
	err := Call(ctx, "secretsmanager:GetSecretValue", func(ctx context.Context) error {
		var err error
		out, err = e.cfg.Secrets.GetSecretValue(ctx, in)
		return err
	})
	if isAPIError(err, "ResourceNotFoundException") {
		return nil, nil
	}
	if err != nil {
		return nil, classifyExternal("GetSecretValue", err)
	}
	v := &Version{ID: aws.ToString(out.VersionId), Stages: out.VersionStages, Created: aws.ToTime(out.CreatedDate)}
	switch {
	case out.SecretString != nil:
		v.Value = SecretValue(*out.SecretString)
	default:
		v.Value = SecretValue(slices.Clone(out.SecretBinary))
	}
	if len(v.Value) == 0 {
		return nil, nil
	}
	if v.ID != "" {
		e.cache.put(aws.ToString(out.ARN), v)
		if arn != aws.ToString(out.ARN) {
			e.cache.put(arn, v)
		}
	}
	return v, nil
}
