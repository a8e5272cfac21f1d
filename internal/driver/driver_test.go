package driver_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/smfake"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// lostAnswer applies every AWSPENDING removal and then answers as the SDK's
// retry of an applied request does on moto under load.
type lostAnswer struct{ *smfake.Fake }

func (l lostAnswer) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	out, err := l.Fake.UpdateSecretVersionStage(ctx, in, o...)
	if err == nil && aws.ToString(in.VersionStage) == rotation.StagePending && in.MoveToVersionId == nil {
		return nil, &smtypes.InvalidParameterException{Message: aws.String("Version stage AWSPENDING not found in version " + aws.ToString(in.RemoveFromVersionId))}
	}
	return out, err
}

func TestRemovingAWSPENDINGThatIsAlreadyRemovedCountsAsDone(t *testing.T) {
	ctx := context.Background()
	f := smfake.New()
	sm := lostAnswer{f}
	out, err := f.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("driver/test"), SecretString: aws.String("v0")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	// The steps: promote the placeholder as a finishSecret would.
	steps := driver.InvokerFunc(func(ctx context.Context, payload []byte) ([]byte, error) {
		ev, err := rotation.ParseEvent(payload)
		if err != nil || ev.Step != rotation.StepFinish {
			return nil, err
		}
		if _, err := f.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(ev.ClientRequestToken), SecretString: aws.String("v1"), VersionStages: []string{rotation.StagePending}}); err != nil {
			return nil, err
		}
		d, err := f.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		if err != nil {
			return nil, err
		}
		var cur string
		for id, st := range d.VersionIdsToStages {
			if slices.Contains(st, rotation.StageCurrent) {
				cur = id
			}
		}
		_, err = f.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn), VersionStage: aws.String(rotation.StageCurrent), MoveToVersionId: aws.String(ev.ClientRequestToken), RemoveFromVersionId: aws.String(cur)})
		return nil, err
	})
	d := &driver.Driver{SM: sm, Invoke: steps, LambdaARN: "arn:aws:lambda:us-east-1:123456789012:function:rot", Attempts: 1}
	res, err := d.Rotate(ctx, arn, "")
	if err != nil {
		t.Fatalf("an AWSPENDING removal that took effect failed the rotation: %v", err)
	}
	st, err := f.Stages(arn)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st[res.Token], []string{rotation.StageCurrent}) {
		t.Fatalf("want the new version AWSCURRENT without AWSPENDING: %v", st)
	}
}
