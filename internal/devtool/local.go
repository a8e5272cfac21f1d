package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/internal/cli"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

var functionNames = []string{"dbrotate", "jwtrotate", "apikeyrotate"}

// envFlags collects repeated --env K=V flags.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("--env wants KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func checkFunction(name string) error {
	for _, f := range functionNames {
		if f == name {
			return nil
		}
	}
	return fmt.Errorf("%w: --function must be one of %s", cli.ErrUsage, strings.Join(functionNames, ", "))
}

// startFunction builds a function's bootstrap for this machine and runs it
// under the Lambda runtime interface emulator with env.
func startFunction(name string, env []string) (*testenv.RIE, error) {
	bin, err := testenv.BuildBootstrap("./functions/" + name)
	if err != nil {
		return nil, err
	}
	return testenv.StartRIE(bin, env)
}

// localEnv is the environment that points a function at endpoint with the
// local stack's static credentials.
func localEnv(endpoint string) []string {
	m := &testenv.Moto{Endpoint: endpoint}
	return m.Env()
}

func cmdLocal(ctx context.Context, args []string, out io.Writer) error {
	cmd := cli.New("devtool local", "SECRET --function NAME --endpoint-url URL [flags]",
		"Plays Secrets Manager against a running local stack: the placeholder, the four steps through the function under the\n"+
			"Lambda runtime emulator, the service's retries and AWSPENDING clean-up.", out)
	var c cli.AWS
	c.Register(cmd.Flags)
	fn := cmd.Flags.String("function", "", "dbrotate, jwtrotate or apikeyrotate")
	attempts := cmd.Flags.Int("attempts", 3, "how often the whole rotation runs before giving up, as the service retries")
	var env envFlags
	cmd.Flags.Var(&env, "env", "KEY=VALUE for the function's environment (repeatable)")
	pos, err := cmd.Parse(args, 1)
	if err != nil {
		return err
	}
	if err := checkFunction(*fn); err != nil {
		return err
	}
	if c.Endpoint == "" {
		return fmt.Errorf("%w: 'devtool local' plays the service against the local stack: pass --endpoint-url or set AWS_ENDPOINT_URL", cli.ErrUsage)
	}
	rie, err := startFunction(*fn, append(localEnv(c.Endpoint), env...))
	if err != nil {
		return err
	}
	defer rie.Stop()
	cfg, err := c.Config(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	m := &testenv.Moto{Endpoint: c.Endpoint}
	lambdaARN, err := m.RegisterNoopLambda(ctx, "rotate-local-"+*fn)
	if err != nil {
		return err
	}
	d := &driver.Driver{SM: sm, Invoke: rie, LambdaARN: lambdaARN, Attempts: *attempts, OnStep: progress(out)}
	res, err := d.Rotate(ctx, pos[0], "")
	if err != nil {
		fmt.Fprint(out, indent(rie.Logs(), "  function log | ", 30))
		return describeFailure(err)
	}
	fmt.Fprintf(out, "rotation of %s succeeded: version %s is AWSCURRENT (%d attempt(s), %s)\n", pos[0], res.Token, res.Attempts, res.Duration.Round(time.Millisecond))
	return nil
}

// progress prints one line per step.
func progress(out io.Writer) func(driver.StepResult) {
	return func(s driver.StepResult) {
		status := "ok"
		if s.Err != nil {
			status = "FAILED: " + s.Err.Error()
		}
		fmt.Fprintf(out, "  attempt %d  %-13s %7.1f ms  %s\n", s.Attempt, s.Step, float64(s.Duration.Microseconds())/1000, status)
	}
}

// describeFailure keeps the function's error class and message visible.
func describeFailure(err error) error {
	var fe *testenv.FunctionError
	if errors.As(err, &fe) {
		return fmt.Errorf("rotation failed: %s", fe.Message)
	}
	return err
}

func indent(s, prefix string, last int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > last {
		lines = lines[len(lines)-last:]
	}
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l + "\n")
		}
	}
	return b.String()
}

func cmdInvoke(ctx context.Context, args []string, out io.Writer) error {
	cmd := cli.New("devtool invoke", "--function NAME (--step STEP|all | --event FILE --endpoint-url URL) [flags]",
		"With --step: starts a local stack (moto, and PostgreSQL for dbrotate), seeds it with the secret the sample events\n"+
			"name, and runs events/<function>/<step>.json through the function under the Lambda runtime emulator with the\n"+
			"environment of events/env.json, showing the labels after each step (earlier steps run first, as preparation).\n"+
			"With --event: runs one event file against the local stack at --endpoint-url.", out)
	var c cli.AWS
	c.Register(cmd.Flags)
	fn := cmd.Flags.String("function", "", "dbrotate, jwtrotate or apikeyrotate")
	step := cmd.Flags.String("step", "", "createSecret, setSecret, testSecret, finishSecret, or all")
	eventFile := cmd.Flags.String("event", "", "an event file, run against --endpoint-url")
	envPath := cmd.Flags.String("env-file", "", "the SAM --env-vars file (default events/env.json)")
	var env envFlags
	cmd.Flags.Var(&env, "env", "KEY=VALUE for the function's environment, over the env file (repeatable)")
	if _, err := cmd.Parse(args, 0); err != nil {
		return err
	}
	if err := checkFunction(*fn); err != nil {
		return err
	}
	if *step != "" {
		steps, err := parseSteps(*step)
		if err != nil {
			return err
		}
		return seededInvoke(ctx, *fn, steps, *envPath, env, out)
	}
	if *eventFile == "" || c.Endpoint == "" {
		return fmt.Errorf("%w: pass --step, or --event with --endpoint-url", cli.ErrUsage)
	}
	event, err := os.ReadFile(*eventFile)
	if err != nil {
		return fmt.Errorf("%w: read --event: %v", cli.ErrUsage, err)
	}
	if _, err := rotation.ParseEvent(event); err != nil {
		fmt.Fprintf(out, "note: the event does not parse as a rotation step (%v); sending it anyway\n", err)
	}
	rie, err := startFunction(*fn, append(localEnv(c.Endpoint), env...))
	if err != nil {
		return err
	}
	defer rie.Stop()
	body, err := rie.Invoke(ctx, event)
	fmt.Fprint(out, indent(rie.Logs(), "  function log | ", 40))
	if err != nil {
		return fmt.Errorf("the function failed: %w", err)
	}
	fmt.Fprintf(out, "the function succeeded: %s\n", strings.TrimSpace(string(body)))
	return nil
}
