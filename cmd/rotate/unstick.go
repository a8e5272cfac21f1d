package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/rotation-suite/rotation/internal/operator"
)

// exitRefused is the exit code of a refusal that changed nothing.
const exitRefused = 3

// refusedError makes run exit with exitRefused.
type refusedError struct{ error }

func (e refusedError) Unwrap() error { return e.error }
func (refusedError) ExitCode() int   { return exitRefused }

func cmdUnstick(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("unstick", flag.ContinueOnError)
	var c commonFlags
	c.register(fs)
	mode := fs.String("mode", "resume", "resume (finish the stuck rotation) or discard (drop it once AWSCURRENT is proven)")
	fn := fs.String("function", "", "the rotation function's name or ARN (default: the secret's rotation function)")
	lambdaURL := fs.String("lambda-endpoint-url", "", "Lambda endpoint (default: --endpoint-url); the runtime emulator's URL for a local function")
	older := fs.Duration("older-than", 2*time.Hour, "act only on a pending version at least this old")
	dry := fs.Bool("dry-run", false, "change nothing: resume says what it would invoke, discard shows the probe's proof")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	m, err := operator.ParseMode(*mode)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := c.awsConfig(ctx)
	if err != nil {
		return err
	}
	sm, err := c.secrets(ctx)
	if err != nil {
		return err
	}
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		if *lambdaURL != "" {
			o.BaseEndpoint = lambdaURL
		}
	})
	u := &operator.Unsticker{Secrets: sm, Lambda: lc, Function: *fn, OlderThan: *older}
	if err := u.Unstick(ctx, pos[0], m, *dry, out); err != nil {
		if isRefused(err) {
			return refusedError{err}
		}
		return err
	}
	return nil
}

func isRefused(err error) bool { return errors.Is(err, operator.ErrRefused) }
