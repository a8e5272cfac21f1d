package smfake

// The service's errors, as the SDK returns them.

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: op, Err: err}
}

func errNotFound(format string, a ...any) error {
	return &types.ResourceNotFoundException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidParam(format string, a ...any) error {
	return &types.InvalidParameterException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidRequest(format string, a ...any) error {
	return &types.InvalidRequestException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errExists(format string, a ...any) error {
	return &types.ResourceExistsException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errLimit(format string, a ...any) error {
	return &types.LimitExceededException{Message: aws.String(fmt.Sprintf(format, a...))}
}

func errInvalidNextToken() error {
	return &types.InvalidNextTokenException{Message: aws.String("The NextToken value is invalid.")}
}

func required(op string, fields ...string) error {
	ip := smithy.InvalidParamsError{Context: op + "Input"}
	for _, f := range fields {
		ip.Add(smithy.NewErrParamRequired(f))
	}
	return ip // a value, as the SDK's validators return it
}

func errMarkedDeleted() error {
	return errInvalidRequest("You can't perform this operation on the secret because it was marked for deletion.")
}
