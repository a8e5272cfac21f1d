// Command rotate is the operator's tool for the rotation suite, for real AWS
// accounts: trigger a rotation and follow it (now), inspect a secret's
// schedule, versions and labels (status), finish or safely drop a
// stuck rotation (unstick), and report every secret in a region against the rotation policy
// (audit). It uses the standard AWS credential chain; --endpoint-url or
// AWS_ENDPOINT_URL points it at a local stack. It links none of the
// rotation engine, strategies, database drivers or test harness (the
// local-stack verbs live in the developer tool behind `make demo` and
// `make invoke`), nor the SDK's Lambda and SQS clients (internal/awscall
// makes those three calls): a plain `go install` stays under 15 MB.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rotation-suite/rotation/internal/cli"
)

const usage = `rotate — operate Secrets Manager rotations

usage:
  rotate now SECRET [--wait] [--timeout 5m] [--queue-url URL] [--output table|json]
        ask Secrets Manager to rotate now; --wait follows the steps and fails
        unless the new version ends up AWSCURRENT, with a value, labels consistent
  rotate status SECRET [--output table|json]
        schedule, last and next rotation, versions and labels, whether AWSCURRENT
        has a value, whether a rotation is stuck and why (exit 3 when stuck)
  rotate unstick SECRET [--mode resume|discard] [--dry-run] [--older-than 2h]
        [--function NAME] [--lambda-endpoint-url URL]
        a stuck rotation (AWSPENDING on a version other than AWSCURRENT):
        resume (default) re-runs its four steps with its own token through the
        function, then removes AWSPENDING; discard removes AWSPENDING only after
        the function's probe proves AWSCURRENT still authenticates
  rotate audit [--policy FILE] [--output table|json|markdown]
        every secret in the region against the rotation policy: enabled, function,
        schedule against the maximum age, overdue, stuck, key (exit 3 on a violation)
  rotate --version

'rotate COMMAND --help' lists a command's flags.
common flags: --endpoint-url URL (or AWS_ENDPOINT_URL), --region REGION
exit codes: 0 ok, 1 failed (the error is printed), 2 usage, 3 the check found a problem
            or the command refused and changed nothing (the reason and what to do are printed)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	tool := cli.Tool{Name: "rotate", Usage: usage, Commands: map[string]cli.Func{
		"now": cmdNow, "status": cmdStatus, "unstick": cmdUnstick, "audit": cmdAudit,
	}}
	return tool.Run(ctx, args, stdout, stderr)
}
