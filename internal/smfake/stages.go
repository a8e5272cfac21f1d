package smfake

// The operations on labels and rotation: UpdateSecretVersionStage,
// ListSecretVersionIds, RotateSecret.

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// UpdateSecretVersionStage moves VersionStage to MoveToVersionId and/or
// removes it from RemoveFromVersionId. If the label is on a version other
// than MoveToVersionId, RemoveFromVersionId is required and must name that
// version; a RemoveFromVersionId that does not carry the label is an
// InvalidParameterException. Moving AWSCURRENT moves AWSPREVIOUS to the old
// current version; AWSCURRENT can only be moved, not removed.
func (f *Fake) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	return serve(f, ctx, "UpdateSecretVersionStage", in, func(in *secretsmanager.UpdateSecretVersionStageInput) bool {
		return in.SecretId != nil && in.VersionStage != nil
	}, []string{"SecretId", "VersionStage"}, f.updateSecretVersionStage)
}

func (f *Fake) updateSecretVersionStage(in *secretsmanager.UpdateSecretVersionStageInput) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	s, err := f.findLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	label := *in.VersionStage
	moveID, rmID := aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	if err := validLabel(label); err != nil {
		return nil, err
	}
	if moveID == "" && rmID == "" {
		return nil, errInvalidParam("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	}
	var to, from *version
	if moveID != "" {
		if to = s.versions[moveID]; to == nil {
			return nil, errInvalidParam("Not a valid version: %s", moveID)
		}
	}
	if rmID != "" {
		if from = s.versions[rmID]; from == nil {
			return nil, errInvalidParam("Not a valid version: %s", rmID)
		}
		if !from.has(label) {
			return nil, errInvalidParam("The staging label %s is not attached to version %s, so it can't be removed from it.", label, rmID)
		}
	}
	holder := s.holder(label)
	ok := func() (*secretsmanager.UpdateSecretVersionStageOutput, error) {
		s.lastChanged = f.now()
		return &secretsmanager.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}, nil
	}
	if to == nil { // remove only
		if label == StageCurrent {
			return nil, errInvalidParam("You can't remove the staging label AWSCURRENT from a version without moving it to another version with MoveToVersionId.")
		}
		from.remove(label)
		if label == StagePending && from.has(StageCurrent) {
			// The service ends a successful rotation this way: record it.
			now := f.now()
			s.lastRotated = &now
		}
		return ok()
	}
	if holder != nil && holder != to && from == nil {
		return nil, errInvalidParam("The parameter RemoveFromVersionId can't be empty. Staging label %s is currently attached to version %s, so you must explicitly reference that version in RemoveFromVersionId.", label, holder.id)
	}
	if holder == nil && s.labelCount() >= MaxLabelsPerSecret { // a label is on at most one version: only a new one adds
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	s.attach(label, to)
	return ok()
}

// ListSecretVersionIds lists the versions that hold a value (never the empty
// placeholder RotateSecret makes): the labelled ones, and with
// IncludeDeprecated also those without a label. MaxResults (1–100) pages the
// list; NextToken continues it, and one the fake did not hand out is an
// InvalidNextTokenException. The service documents no order; the fake lists
// in creation order, oldest first, so a caller must sort by CreatedDate.
func (f *Fake) ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	return serve(f, ctx, "ListSecretVersionIds", in, func(in *secretsmanager.ListSecretVersionIdsInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.listSecretVersionIds)
}

func (f *Fake) listSecretVersionIds(in *secretsmanager.ListSecretVersionIdsInput) (*secretsmanager.ListSecretVersionIdsOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	max := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, errInvalidParam("MaxResults must be between 1 and 100.")
		}
		max = int(*in.MaxResults)
	}
	var ids []string
	for _, id := range s.order {
		v := s.versions[id]
		if v.hasValue && (len(v.stages) > 0 || aws.ToBool(in.IncludeDeprecated)) {
			ids = append(ids, id)
		}
	}
	start := 0
	if tok := aws.ToString(in.NextToken); tok != "" {
		n, err := fmt.Sscanf(tok, "smfake-page-%d", &start)
		if err != nil || n != 1 || start < 0 || start > len(ids) {
			return nil, errInvalidNextToken()
		}
	}
	end := min(start+max, len(ids))
	out := &secretsmanager.ListSecretVersionIdsOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), Versions: []types.SecretVersionsListEntry{}}
	for _, id := range ids[start:end] {
		v := s.versions[id]
		e := types.SecretVersionsListEntry{VersionId: aws.String(id), CreatedDate: aws.Time(v.created)}
		if len(v.stages) > 0 {
			e.VersionStages = append([]string(nil), v.stages...)
		}
		if s.kmsKeyID != nil {
			e.KmsKeyIds = []string{*s.kmsKeyID}
		}
		out.Versions = append(out.Versions, e)
	}
	if end < len(ids) {
		out.NextToken = aws.String(fmt.Sprintf("smfake-page-%d", end))
	}
	return out, nil
}

// RotateSecret configures rotation (RotationLambdaARN, RotationRules) and
// starts a rotation: it creates the empty placeholder version whose id is
// ClientRequestToken and attaches AWSPENDING to it. It fails with
// InvalidRequestException if AWSPENDING is on a version other than AWSCURRENT
// ("a previous rotation isn't complete"), or if no Lambda is configured.
//
// The fake invokes no function: the caller runs the four steps (or, for
// RotateImmediately=false, testSecret only) and afterwards calls
// RemovePending, as the service does after a successful rotation. A repeated
// call with the token of the rotation in progress returns that rotation.
func (f *Fake) RotateSecret(ctx context.Context, in *secretsmanager.RotateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RotateSecretOutput, error) {
	return serve(f, ctx, "RotateSecret", in, func(in *secretsmanager.RotateSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.rotateSecret)
}

func (f *Fake) rotateSecret(in *secretsmanager.RotateSecretInput) (*secretsmanager.RotateSecretOutput, error) {
	s, err := f.findLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	if r := in.RotationRules; r != nil {
		if r.AutomaticallyAfterDays != nil && (*r.AutomaticallyAfterDays < 1 || *r.AutomaticallyAfterDays > 1000) {
			return nil, errInvalidParam("RotationRules.AutomaticallyAfterDays must be within 1-1000.")
		}
		if r.AutomaticallyAfterDays != nil && r.ScheduleExpression != nil {
			return nil, errInvalidParam("You can't specify both AutomaticallyAfterDays and ScheduleExpression.")
		}
	}
	lambdaARN := in.RotationLambdaARN
	if lambdaARN == nil || *lambdaARN == "" {
		lambdaARN = s.lambdaARN
	}
	if lambdaARN == nil || *lambdaARN == "" {
		return nil, errInvalidRequest("No Lambda rotation function ARN is associated with this secret.")
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	result := &secretsmanager.RotateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(tok)}
	if p := s.holder(StagePending); p != nil && !p.has(StageCurrent) {
		if p.id == tok {
			return result, nil // the same request again
		}
		return nil, errInvalidRequest("A previous rotation isn't complete. That rotation will be reattempted.")
	}
	if _, exists := s.versions[tok]; exists {
		return nil, errExists("A version with ClientRequestToken %s already exists.", tok)
	}
	if s.labelCount() >= MaxLabelsPerSecret && s.holder(StagePending) == nil {
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	v, err := f.newVersion(s, tok, nil, nil)
	if err != nil {
		return nil, err
	}
	s.attach(StagePending, v)
	s.rotationEnabled = true
	s.lambdaARN = cloneString(lambdaARN)
	if in.RotationRules != nil {
		s.rules = cloneRules(in.RotationRules)
	}
	s.lastChanged = f.now()
	return result, nil
}
