// Command devtool is the developer's harness for the local stack, behind
// `make demo`, `make invoke` and `make local`: it plays Secrets Manager
// against moto and runs the functions under the Lambda runtime interface
// emulator. It builds the functions from this repository and starts moto,
// PostgreSQL and the emulator through internal/testenv, so it works only
// inside a checkout. The operator's tool for real accounts is cmd/rotate.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/testenv"
)

const usage = `devtool — the rotation suite on a local stack (run it through make)

usage:
  make demo                     devtool demo
        the whole suite on an embedded local stack (PostgreSQL, moto, RIE)
  make invoke FUNCTION=fn STEP=step   devtool invoke --function fn --step step
  make invoke FUNCTION=fn STEP=all    every step of the sample events, in order
        seed a local stack with the sample event's secret, run the step(s)
        through the function under the Lambda runtime emulator, show the labels
  devtool invoke --function fn --event FILE --endpoint-url URL
        one event file against a running local stack
  devtool local SECRET --function fn --endpoint-url URL [--env K=V ...]
        play Secrets Manager against a running local stack: placeholder, the four
        steps through the Lambda runtime emulator, retries, AWSPENDING clean-up

'devtool COMMAND --help' lists a command's flags.
exit codes: 0 ok, 1 failed, 2 usage
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	testenv.StopAll() // whatever a command started and did not stop, and the build cache

	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	tool := cli.Tool{Name: "devtool", Usage: usage, Commands: map[string]cli.Func{
		"local": stdoutOnly(cmdLocal), "invoke": stdoutOnly(cmdInvoke), "demo": stdoutOnly(cmdDemo),
	}}
	return tool.Run(ctx, args, stdout, stderr)
}

// stdoutOnly adapts a command that writes everything to stdout (its errors
// are printed by cli.Tool).
func stdoutOnly(f func(context.Context, []string, io.Writer) error) cli.Func {
	return func(ctx context.Context, args []string, stdout, _ io.Writer) error { return f(ctx, args, stdout) }
}
