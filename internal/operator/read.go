package operator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// VersionsAPI is what reading a secret's versions uses of Secrets Manager.
type VersionsAPI interface {
	ListSecretVersionIds(ctx context.Context, in *secretsmanager.ListSecretVersionIdsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// VersionsCreated returns when each version of secret arn that holds a
// value was created (ListSecretVersionIds, every page; deprecated versions
// left out).
func VersionsCreated(ctx context.Context, sm VersionsAPI, arn string) (map[string]time.Time, error) {
	created := map[string]time.Time{}
	var next *string
	for {
		out, err := sm.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(false), NextToken: next})
		if err != nil {
			return nil, Explain("ListSecretVersionIds", err)
		}
		for _, v := range out.Versions {
			created[aws.ToString(v.VersionId)] = aws.ToTime(v.CreatedDate)
		}
		if aws.ToString(out.NextToken) == "" || (next != nil && *next == *out.NextToken) {
			return created, nil
		}
		next = out.NextToken
	}
}

// HasValue asks GetSecretValue for the version of arn that carries stage
// (versionID "" for whichever does) and drops the value at once: true when
// there is one, false on ResourceNotFoundException (the empty placeholder
// RotateSecret makes).
func HasValue(ctx context.Context, sm VersionsAPI, arn, versionID, stage string) (bool, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	_, err := sm.GetSecretValue(ctx, in)
	var nf *smtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, Explain("GetSecretValue ("+stage+")", err)
	}
	return true, nil
}

// Explain turns an AWS error into one operator-readable line: the
// operation, the service's error code and its message.
func Explain(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())
	}
	return fmt.Errorf("%s: %w", op, err)
}
