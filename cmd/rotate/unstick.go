package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/awscall"
	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/operator"
)

// exitRefused is the exit code of a refusal that changed nothing.
const exitRefused = cli.ExitFindings

// refusedError makes run exit with exitRefused.
type refusedError struct{ error }

func (e refusedError) Unwrap() error { return e.error }
func (refusedError) ExitCode() int   { return exitRefused }

func cmdUnstick(ctx context.Context, args []string, out, _ io.Writer) error {
	cmd := cli.New("rotate unstick", "SECRET [flags]",
		"A stuck rotation (AWSPENDING on a version other than AWSCURRENT): resume (default) re-runs its four steps with its\n"+
			"own token through the function, then removes AWSPENDING; discard removes AWSPENDING only after the function's\n"+
			"probe proves AWSCURRENT still authenticates. A refusal changes nothing and exits 3.", out)
	fs := cmd.Flags
	var c cli.AWS
	c.Register(fs)
	mode := fs.String("mode", "resume", "resume (finish the stuck rotation) or discard (drop it once AWSCURRENT is proven)")
	fn := fs.String("function", "", "the rotation function's name or ARN (default: the secret's rotation function)")
	lambdaURL := fs.String("lambda-endpoint-url", "", "Lambda endpoint (default: $AWS_ENDPOINT_URL_LAMBDA, --endpoint-url, Lambda in the region); the runtime emulator's URL for a local function")
	older := fs.Duration("older-than", 2*time.Hour, "act only on a pending version at least this old")
	dry := fs.Bool("dry-run", false, "change nothing: resume says what it would invoke, discard shows the probe's proof")
	pos, err := cmd.Parse(args, 1)
	if err != nil {
		return err
	}
	m, err := operator.ParseMode(*mode)
	if err != nil {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	lc := awscall.NewLambda(cfg, *lambdaURL)
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
