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

	"github.com/rotation-suite/rotation/internal/awscall"
)

// Handler is a Lambda handler run in-process (*rotation.Engine is one).
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Lambda answers Invoke with h: an error comes back as FunctionError
// "Unhandled" with Lambda's {"errorType","errorMessage"} document, a nil
// result as the payload null. It has *awscall.Lambda's Invoke.
func Lambda(h Handler) interface {
	Invoke(ctx context.Context, function string, payload []byte) (*awscall.InvokeResult, error)
} {
	return lambdaFunc{h}
}

type lambdaFunc struct{ h Handler }

func (p lambdaFunc) Invoke(ctx context.Context, _ string, payload []byte) (*awscall.InvokeResult, error) {
	out, err := p.h.Invoke(ctx, payload)
	if err != nil {
		doc, merr := json.Marshal(map[string]string{"errorType": fmt.Sprintf("%T", err), "errorMessage": err.Error()})
		if merr != nil {
			return nil, merr
		}
		return &awscall.InvokeResult{FunctionError: "Unhandled", Payload: doc}, nil
	}
	if out == nil {
		out = []byte("null")
	}
	return &awscall.InvokeResult{Payload: out}, nil
}
