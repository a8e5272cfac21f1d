package smfake

// The operations on values: CreateSecret, GetSecretValue, PutSecretValue.

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// CreateSecret creates a secret; with a value, its first version carries
// AWSCURRENT. A retry with the same ClientRequestToken and value succeeds.
func (f *Fake) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return serve(f, ctx, "CreateSecret", in, func(in *secretsmanager.CreateSecretInput) bool { return in.Name != nil && *in.Name != "" }, []string{"Name"}, f.createSecret)
}

func (f *Fake) createSecret(in *secretsmanager.CreateSecretInput) (*secretsmanager.CreateSecretOutput, error) {
	if err := validateValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	for _, s := range f.secrets {
		if s.name != *in.Name {
			continue
		}
		if s.deletion != nil {
			return nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		if v, ok := s.versions[tok]; ok && v.hasValue && v.sameValue(in.SecretString, in.SecretBinary) {
			return &secretsmanager.CreateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(v.id)}, nil
		}
		return nil, errExists("The operation failed because the secret %s already exists.", s.name)
	}
	now := f.now()
	s := &secret{
		arn:         fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", f.region, f.account, *in.Name, suffix()),
		name:        *in.Name,
		description: cloneString(in.Description),
		kmsKeyID:    cloneString(in.KmsKeyId),
		tags:        append([]types.Tag(nil), in.Tags...),
		versions:    map[string]*version{},
		created:     now,
		lastChanged: now,
	}
	out := &secretsmanager.CreateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}
	if in.SecretString != nil || in.SecretBinary != nil {
		v, err := f.newVersion(s, tok, in.SecretString, in.SecretBinary)
		if err != nil {
			return nil, err
		}
		v.add(StageCurrent)
		out.VersionId = aws.String(tok)
	}
	f.secrets[s.arn] = s
	return out, nil
}

// GetSecretValue returns a version's value: by VersionId, by VersionStage, or
// AWSCURRENT when neither is given. With both, the version must carry the
// stage. The empty placeholder has no value: ResourceNotFoundException.
func (f *Fake) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return serve(f, ctx, "GetSecretValue", in, func(in *secretsmanager.GetSecretValueInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.getSecretValue)
}

func (f *Fake) getSecretValue(in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
	s, err := f.findLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	vid, stage := aws.ToString(in.VersionId), aws.ToString(in.VersionStage)
	var v *version
	if vid != "" {
		v = s.versions[vid]
		if v == nil {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", vid)
		}
		if stage != "" && !v.has(stage) {
			return nil, errInvalidRequest("You provided a VersionStage that is not associated to the provided VersionId.")
		}
		if !v.hasValue {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: %s", vid)
		}
	} else {
		if stage == "" {
			stage = StageCurrent
		}
		v = s.holder(stage)
		if v == nil || !v.hasValue {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for staging label: %s", stage)
		}
	}
	return &secretsmanager.GetSecretValueOutput{
		ARN:           aws.String(s.arn),
		Name:          aws.String(s.name),
		VersionId:     aws.String(v.id),
		SecretString:  cloneString(v.str),
		SecretBinary:  cloneBytes(v.bin),
		VersionStages: append([]string(nil), v.stages...),
		CreatedDate:   aws.Time(v.created),
	}, nil
}

// PutSecretValue stores a value under ClientRequestToken:
//   - a new token creates a version;
//   - the empty placeholder made by RotateSecret is filled by the first put;
//   - an existing version with the identical value: success, nothing changes;
//   - an existing version with a different value: ResourceExistsException.
//
// The version then gets VersionStages (default AWSCURRENT; the first version
// of a secret always gets AWSCURRENT), each moved from whichever version held
// it; moving AWSCURRENT moves AWSPREVIOUS to the old current version.
func (f *Fake) PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	return serve(f, ctx, "PutSecretValue", in, func(in *secretsmanager.PutSecretValueInput) bool { return in.SecretId != nil }, []string{"SecretId"}, f.putSecretValue)
}

func (f *Fake) putSecretValue(in *secretsmanager.PutSecretValueInput) (*secretsmanager.PutSecretValueOutput, error) {
	s, err := f.findLive(in.SecretId)
	if err != nil {
		return nil, err
	}
	if err := validateValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	if in.SecretString == nil && in.SecretBinary == nil {
		return nil, errInvalidRequest("You must provide either SecretString or SecretBinary.")
	}
	tok, err := token(in.ClientRequestToken)
	if err != nil {
		return nil, err
	}
	stages := append([]string(nil), in.VersionStages...)
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	for _, st := range stages {
		if err := validLabel(st); err != nil {
			return nil, err
		}
	}
	if len(stages) > MaxLabelsPerSecret {
		return nil, errInvalidParam("You can't specify more than %d staging labels.", MaxLabelsPerSecret)
	}
	result := func(v *version) *secretsmanager.PutSecretValueOutput {
		return &secretsmanager.PutSecretValueOutput{
			ARN: aws.String(s.arn), Name: aws.String(s.name),
			VersionId: aws.String(v.id), VersionStages: append([]string(nil), v.stages...),
		}
	}
	v := s.versions[tok]
	if v != nil && v.hasValue {
		if v.sameValue(in.SecretString, in.SecretBinary) {
			return result(v), nil
		}
		return nil, errExists("You can't modify an existing version, you can only create a new version.")
	}
	if len(s.versions) == 0 && !contains(stages, StageCurrent) {
		stages = append(stages, StageCurrent)
	}
	// Labels after the call: every label now attached plus the new ones.
	labels := map[string]bool{}
	for _, x := range s.versions {
		for _, st := range x.stages {
			labels[st] = true
		}
	}
	for _, st := range stages {
		labels[st] = true
	}
	if len(labels) > MaxLabelsPerSecret {
		return nil, errLimit("You have attached the maximum number of staging labels (%d) to this secret.", MaxLabelsPerSecret)
	}
	if v == nil {
		if v, err = f.newVersion(s, tok, in.SecretString, in.SecretBinary); err != nil {
			return nil, err
		}
	} else { // the empty placeholder: the first put fills it
		v.str, v.bin, v.hasValue = cloneString(in.SecretString), cloneBytes(in.SecretBinary), true
	}
	for _, st := range stages {
		s.attach(st, v)
	}
	s.lastChanged = f.now()
	return result(v), nil
}
