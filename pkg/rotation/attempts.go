package rotation

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"
)

// attemptCounter counts the HTTP attempts the SDK makes for one call (its
// retries included), so a refused label move can tell "an earlier attempt of
// this call was applied and its answer lost" (more than one attempt) from
// "someone else moved the label first" (one attempt). A SecretsAPI that is
// not the SDK's client ignores the option: zero attempts, read as one.
type attemptCounter struct{ count atomic.Int32 }

func (a *attemptCounter) n() int32 { return a.count.Load() }

// option adds a Finalize middleware after the SDK's retry middleware, which
// therefore runs once per attempt.
func (a *attemptCounter) option(o *secretsmanager.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("rotationAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				a.count.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}
