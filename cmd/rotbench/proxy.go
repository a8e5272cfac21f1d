package main

import (
	"context"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// sdkCounter counts at the SDK's middleware: a Finalize-step middleware
// after the retry middleware sees every attempt of every operation made by
// the clients built from the configuration it is added to.
type sdkCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newSDKCounter() *sdkCounter { return &sdkCounter{counts: map[string]int{}} }

// apiOption adds the counting middleware to a client's stack.
func (c *sdkCounter) apiOption(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("rotbenchCount",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			svc := strings.ToLower(strings.ReplaceAll(awsmiddleware.GetServiceID(ctx), " ", ""))
			c.mu.Lock()
			c.counts[svc+":"+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

func (c *sdkCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counts
	c.counts = map[string]int{}
	return m
}
