package rotation

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// store is the Store a strategy gets for one step.
type store struct{ r *run }

func (r *run) store() Store { return store{r} }

func (s store) Previous(ctx context.Context) (*Version, error) {
	if s.r.previous == "" {
		return nil, nil
	}
	v, err := s.r.e.readVersion(ctx, s.r.arn, s.r.previous, StagePrevious)
	if v != nil {
		s.r.red.AddValue(v.Value)
	}
	return v, err
}

func (s store) GetSecret(ctx context.Context, secretID, versionID, stage string) (*Version, error) {
	if versionID == "" && stage == "" {
		stage = StageCurrent
	}
	v, err := s.r.e.readVersion(ctx, secretID, versionID, stage)
	if v != nil {
		s.r.red.AddValue(v.Value)
	}
	return v, err
}

func (s store) PutSecret(ctx context.Context, secretID, token string, value []byte) error {
	s.r.red.AddValue(value)
	err := Call(ctx, "secretsmanager:PutSecretValue", func(ctx context.Context) error {
		_, err := s.r.e.cfg.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId:           aws.String(secretID),
			ClientRequestToken: aws.String(token),
			SecretString:       aws.String(string(value)),
		})
		return err
	})
	if isAPIError(err, "ResourceExistsException") {
		s.r.e.cache.forget(secretID, token)
		stored, rerr := s.r.e.readVersion(ctx, secretID, token, "")
		if rerr != nil {
			return rerr
		}
		if stored != nil && string(stored.Value) == string(value) {
			return nil
		}
		return newError(ClassState, "", "PutSecretValue", "version "+token+" of secret "+secretID+" already holds a different value", err)
	}
	if err != nil {
		return classifyExternal("PutSecretValue", err)
	}
	return nil
}
