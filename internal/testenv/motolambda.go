package testenv

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const noopRoleName = "testenv-noop-rotation"

const lambdaTrustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
	`"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// RegisterNoopLambda registers a Lambda function called name in moto (with
// the IAM role it needs) and returns its ARN, so that RotateSecret accepts
// it as RotationLambdaARN. moto runs without Docker here, so invoking it is
// a no-op: RotateSecret only creates the AWSPENDING placeholder and the test
// (or the local driver) runs the four steps itself. Calling it again with the
// same name returns the same ARN. moto's Reset removes the function.
func (m *Moto) RegisterNoopLambda(ctx context.Context, name string) (string, error) {
	cfg, err := m.AWSConfig(ctx)
	if err != nil {
		return "", err
	}
	iamc := iam.NewFromConfig(cfg)
	var roleARN string
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(noopRoleName),
		AssumeRolePolicyDocument: aws.String(lambdaTrustPolicy),
	})
	var exists *iamtypes.EntityAlreadyExistsException
	switch {
	case err == nil:
		roleARN = aws.ToString(role.Role.Arn)
	case errors.As(err, &exists):
		got, gerr := iamc.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(noopRoleName)})
		if gerr != nil {
			return "", fmt.Errorf("testenv: get role %s: %w", noopRoleName, gerr)
		}
		roleARN = aws.ToString(got.Role.Arn)
	default:
		return "", fmt.Errorf("testenv: create role %s: %w", noopRoleName, err)
	}

	zipFile, err := noopZip()
	if err != nil {
		return "", err
	}
	lc := lambda.NewFromConfig(cfg)
	fn, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(name),
		Role:          aws.String(roleARN),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
		Code:          &lambdatypes.FunctionCode{ZipFile: zipFile},
		Timeout:       aws.Int32(30),
	})
	var conflict *lambdatypes.ResourceConflictException
	switch {
	case err == nil:
		return aws.ToString(fn.FunctionArn), nil
	case errors.As(err, &conflict):
		got, gerr := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if gerr != nil {
			return "", fmt.Errorf("testenv: get function %s: %w", name, gerr)
		}
		return aws.ToString(got.Configuration.FunctionArn), nil
	default:
		return "", fmt.Errorf("testenv: create function %s: %w", name, err)
	}
}

// noopZip is a deployment package holding a bootstrap that does nothing.
func noopZip() ([]byte, error) { return DeploymentZip([]byte("#!/bin/sh\nexit 0\n")) }
