// Command baseline is the smallest Lambda function aws-lambda-go allows: an
// empty handler and nothing else. rotbench builds it the way the rotation
// functions are built and measures its cold start beside theirs, as the
// floor that the Go runtime, the exec and the Runtime API client set; the
// difference is what the functions' own start-up costs.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) error { return nil })
}
