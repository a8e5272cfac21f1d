package smfake

// The operations on the secret itself: DescribeSecret, tags, deletion.

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// DescribeSecret reports the secret's metadata, rotation configuration and
// VersionIdsToStages (labelled versions only, the empty placeholder included;
// deprecated versions are left out, as the service does).
func (f *Fake) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return serve(f, ctx, "DescribeSecret", in, func(in *secretsmanager.DescribeSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.describeSecret)
}

func (f *Fake) describeSecret(in *secretsmanager.DescribeSecretInput) (*secretsmanager.DescribeSecretOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	out := &secretsmanager.DescribeSecretOutput{
		ARN:                aws.String(s.arn),
		Name:               aws.String(s.name),
		Description:        cloneString(s.description),
		KmsKeyId:           cloneString(s.kmsKeyID),
		RotationEnabled:    aws.Bool(s.rotationEnabled),
		RotationLambdaARN:  cloneString(s.lambdaARN),
		RotationRules:      cloneRules(s.rules),
		CreatedDate:        aws.Time(s.created),
		LastChangedDate:    aws.Time(s.lastChanged),
		LastRotatedDate:    cloneTime(s.lastRotated),
		DeletedDate:        cloneTime(s.deletion),
		VersionIdsToStages: map[string][]string{},
	}
	if len(s.tags) > 0 {
		out.Tags = append([]types.Tag(nil), s.tags...)
	}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			out.VersionIdsToStages[id] = append([]string(nil), v.stages...)
		}
	}
	return out, nil
}

// TagResource adds or replaces tags by key.
func (f *Fake) TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return serve(f, ctx, "TagResource", in, func(in *secretsmanager.TagResourceInput) bool { return in.SecretId != nil && in.Tags != nil }, []string{"SecretId", "Tags"}, f.tagResource)
}

func (f *Fake) tagResource(in *secretsmanager.TagResourceInput) (*secretsmanager.TagResourceOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Tags {
		if t.Key == nil || *t.Key == "" {
			return nil, errInvalidParam("A tag key can't be empty.")
		}
	}
	for _, t := range in.Tags {
		replaced := false
		for i := range s.tags {
			if aws.ToString(s.tags[i].Key) == *t.Key {
				s.tags[i] = types.Tag{Key: cloneString(t.Key), Value: cloneString(t.Value)}
				replaced = true
			}
		}
		if !replaced {
			s.tags = append(s.tags, types.Tag{Key: cloneString(t.Key), Value: cloneString(t.Value)})
		}
	}
	s.lastChanged = f.now()
	return &secretsmanager.TagResourceOutput{}, nil
}

// UntagResource removes tags by key; absent keys are ignored.
func (f *Fake) UntagResource(ctx context.Context, in *secretsmanager.UntagResourceInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error) {
	return serve(f, ctx, "UntagResource", in, func(in *secretsmanager.UntagResourceInput) bool { return in.SecretId != nil && in.TagKeys != nil }, []string{"SecretId", "TagKeys"}, f.untagResource)
}

func (f *Fake) untagResource(in *secretsmanager.UntagResourceInput) (*secretsmanager.UntagResourceOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	kept := s.tags[:0]
	for _, t := range s.tags {
		if !contains(in.TagKeys, aws.ToString(t.Key)) {
			kept = append(kept, t)
		}
	}
	s.tags = kept
	s.lastChanged = f.now()
	return &secretsmanager.UntagResourceOutput{}, nil
}

// DeleteSecret schedules deletion after RecoveryWindowInDays (7-30, default
// 30), or deletes at once with ForceDeleteWithoutRecovery. A secret scheduled
// for deletion still answers DescribeSecret; reading or changing its value is
// an InvalidRequestException.
func (f *Fake) DeleteSecret(ctx context.Context, in *secretsmanager.DeleteSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DeleteSecretOutput, error) {
	return serve(f, ctx, "DeleteSecret", in, func(in *secretsmanager.DeleteSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.deleteSecret)
}

func (f *Fake) deleteSecret(in *secretsmanager.DeleteSecretInput) (*secretsmanager.DeleteSecretOutput, error) {
	force := aws.ToBool(in.ForceDeleteWithoutRecovery)
	if in.RecoveryWindowInDays != nil && force {
		return nil, errInvalidParam("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(30)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < 7 || days > 30 {
			return nil, errInvalidParam("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	now := f.now()
	if force {
		delete(f.secrets, s.arn)
		return &secretsmanager.DeleteSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), DeletionDate: aws.Time(now)}, nil
	}
	if s.deletion != nil {
		return nil, errInvalidRequest("You can't perform this operation on the secret because it was already scheduled for deletion.")
	}
	when := now.Add(time.Duration(days) * 24 * time.Hour)
	s.deletion = &when
	return &secretsmanager.DeleteSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), DeletionDate: aws.Time(when)}, nil
}

// RestoreSecret cancels a scheduled deletion.
func (f *Fake) RestoreSecret(ctx context.Context, in *secretsmanager.RestoreSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.RestoreSecretOutput, error) {
	return serve(f, ctx, "RestoreSecret", in, func(in *secretsmanager.RestoreSecretInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.restoreSecret)
}

func (f *Fake) restoreSecret(in *secretsmanager.RestoreSecretInput) (*secretsmanager.RestoreSecretOutput, error) {
	s, err := f.find(in.SecretId)
	if err != nil {
		return nil, err
	}
	s.deletion = nil
	return &secretsmanager.RestoreSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}, nil
}
