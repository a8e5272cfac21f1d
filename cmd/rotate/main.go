// Command rotate is the operator's tool for the rotation suite: trigger a
// rotation by hand and follow it, inspect a secret's versions and labels,
// finish or safely drop a stuck rotation, play Secrets Manager against the local
// stack, invoke a function under the Lambda runtime emulator, and run the
// one-command demo. It works against real AWS with the standard credential
// chain, and against the local stack with --endpoint-url or AWS_ENDPOINT_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `rotate — trigger and inspect Secrets Manager rotations

usage:
  rotate now SECRET [--wait] [--timeout 5m] [--queue-url URL]
        ask Secrets Manager to rotate now (as 'aws secretsmanager rotate-secret');
        --wait follows the rotation until the new version is AWSCURRENT
  rotate status SECRET
        versions, labels, last and next rotation; whether a rotation is stuck and why
  rotate unstick SECRET [--mode resume|discard] [--dry-run] [--older-than 2h]
        [--function NAME] [--lambda-endpoint-url URL]
        a stuck rotation (AWSPENDING on a version other than AWSCURRENT):
        resume (default) re-runs its four steps with its own token through the
        function, then removes AWSPENDING; discard removes AWSPENDING only after
        the function's probe proves AWSCURRENT still authenticates
  rotate local SECRET --function dbrotate|jwtrotate|apikeyrotate [--env K=V ...]
        play Secrets Manager against the local stack: placeholder, the four
        steps through the Lambda runtime emulator, retries, AWSPENDING clean-up
  rotate invoke --function NAME --event FILE [--env K=V ...]
        run one event through the function under the Lambda runtime emulator
  rotate demo
        the whole suite on an embedded local stack (PostgreSQL, moto, RIE)

common flags: --endpoint-url URL (or AWS_ENDPOINT_URL), --region REGION
exit codes: 0 ok, 1 failed (the error class and message are printed), 2 usage,
            3 refused, nothing changed (unstick: the reason and what to do are printed)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a usage error (exit code 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func(context.Context, []string, io.Writer) error{
		"now": cmdNow, "status": cmdStatus, "unstick": cmdUnstick,
		"local": cmdLocal, "invoke": cmdInvoke, "demo": cmdDemo,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rotate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := f(ctx, args[1:], stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "rotate %s: %v\n", args[0], err)
		return 2
	case errors.As(err, new(interface{ ExitCode() int })):
		var ec interface{ ExitCode() int }
		errors.As(err, &ec)
		fmt.Fprintf(stderr, "rotate %s: %v\n", args[0], err)
		return ec.ExitCode()
	default:
		fmt.Fprintf(stderr, "rotate %s: %v\n", args[0], err)
		return 1
	}
}

// commonFlags are the flags every AWS-facing command takes.
type commonFlags struct {
	endpoint string
	region   string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint-url", os.Getenv("AWS_ENDPOINT_URL"), "AWS endpoint (local stack)")
	fs.StringVar(&c.region, "region", "", "AWS region (default from the environment)")
}

// parseArgs parses flags that may come before or after one positional
// argument (the secret), as operators type them.
func parseArgs(fs *flag.FlagSet, args []string, positional int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != positional {
		return nil, fmt.Errorf("%w: want %d argument(s), got %d", errUsage, positional, len(pos))
	}
	return pos, nil
}
