// Package inproc owns answering the Lambda Invoke API with a handler in the
// same process, as Lambda answers for a function whose handler it is. Tests
// and local tools use it to drive the operator's Unstick against a rotation
// engine without a runtime emulator; the operator tool itself never links it
// (nor, through it, the engine).
package inproc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Handler is a Lambda handler run in-process (*rotation.Engine is one).
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Client is the one Lambda call it answers; the SDK's *lambda.Client has
// the same method, so either satisfies an interface that asks for Invoke.
type Client interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Lambda answers Invoke with h: an error comes back as FunctionError
// "Unhandled" with Lambda's {"errorType","errorMessage"} document, a nil
// result as the payload null.
func Lambda(h Handler) Client { return lambdaFunc{h} }

type lambdaFunc struct{ h Handler }

func (p lambdaFunc) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	out, err := p.h.Invoke(ctx, in.Payload)
	if err != nil {
		doc, merr := json.Marshal(map[string]string{"errorType": fmt.Sprintf("%T", err), "errorMessage": err.Error()})
		if merr != nil {
			return nil, merr
		}
		return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: doc}, nil
	}
	if out == nil {
		out = []byte("null")
	}
	return &lambda.InvokeOutput{StatusCode: 200, Payload: out}, nil
}
