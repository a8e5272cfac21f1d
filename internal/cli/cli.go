// Package cli owns what the suite's command-line tools share: flag parsing
// that accepts flags before or after the positional arguments, --help that
// lists a subcommand's flags on stdout and exits 0, the exit codes, the
// --output format, and the AWS configuration from --endpoint-url / --region.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Exit codes, the same for every subcommand.
const (
	ExitOK       = 0 // done; for a check: nothing wrong
	ExitFailed   = 1 // the operation failed (AWS error, rotation failed or timed out)
	ExitUsage    = 2 // bad arguments
	ExitFindings = 3 // the check found a problem (a stuck rotation, a policy violation), or the command refused and changed nothing
)

// ErrUsage marks a usage error (ExitUsage).
var ErrUsage = errors.New("usage")

// ErrHelp is returned after --help printed the subcommand's help (ExitOK).
var ErrHelp = errors.New("help shown")

// Findings is returned by a check that ran and found problems (ExitFindings).
type Findings struct{ Summary string }

func (f *Findings) Error() string { return f.Summary }

// Code maps a subcommand's error to its exit code. An error with an
// ExitCode method chooses its own.
func Code(err error) int {
	var f *Findings
	var ec interface{ ExitCode() int }
	switch {
	case err != nil && errors.As(err, &ec):
		return ec.ExitCode()
	case err == nil, errors.Is(err, ErrHelp):
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.As(err, &f):
		return ExitFindings
	default:
		return ExitFailed
	}
}

// Command describes a subcommand for its --help.
type Command struct {
	Name     string // e.g. "rotate status"
	Synopsis string // e.g. "SECRET [flags]"
	About    string // what it does, one paragraph
	Flags    *flag.FlagSet
	Stdout   io.Writer
}

// New returns a Command with an empty flag set.
func New(name, synopsis, about string, stdout io.Writer) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Command{Name: name, Synopsis: synopsis, About: about, Flags: fs, Stdout: stdout}
}

// Help writes the subcommand's help: synopsis, description, every flag.
func (c *Command) Help(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n\nflags:\n", c.Name, c.Synopsis, c.About)
	c.Flags.SetOutput(w)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nexit codes: %d ok, %d failed, %d usage, %d the check found a problem or the command refused (nothing changed)\n", ExitOK, ExitFailed, ExitUsage, ExitFindings)
}

// Parse parses flags that may come before or after the positional arguments,
// as operators type them, and wants exactly positional of them. --help or -h
// prints the help to Stdout and returns ErrHelp.
func (c *Command) Parse(args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := c.Flags.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.Help(c.Stdout)
				return nil, ErrHelp
			}
			return nil, fmt.Errorf("%w: %v (see %s --help)", ErrUsage, err, c.Name)
		}
		if c.Flags.NArg() == 0 {
			break
		}
		pos = append(pos, c.Flags.Arg(0))
		args = c.Flags.Args()[1:]
	}
	if len(pos) != positional {
		return nil, fmt.Errorf("%w: want %d argument(s), got %d (see %s --help)", ErrUsage, positional, len(pos), c.Name)
	}
	return pos, nil
}

// AWS holds the flags every AWS-facing subcommand takes.
type AWS struct {
	Endpoint string
	Region   string
}

// Register adds --endpoint-url and --region to fs.
func (a *AWS) Register(fs *flag.FlagSet) {
	fs.StringVar(&a.Endpoint, "endpoint-url", os.Getenv("AWS_ENDPOINT_URL"), "AWS endpoint, for a local stack (default $AWS_ENDPOINT_URL)")
	fs.StringVar(&a.Region, "region", "", "AWS region (default from the environment or profile)")
}

// Config loads the AWS configuration with the standard credential chain.
func (a *AWS) Config(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if a.Region != "" {
		opts = append(opts, config.WithRegion(a.Region))
	}
	if a.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(a.Endpoint))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return cfg, fmt.Errorf("no AWS region: set AWS_REGION or pass --region")
	}
	return cfg, nil
}

// Output is the --output flag: table (for people) or json (for scripts).
type Output string

// Output formats.
const (
	Table    Output = "table"
	JSON     Output = "json"
	Markdown Output = "markdown"
)

// RegisterOutput adds --output with the given formats (the first is the default).
func RegisterOutput(fs *flag.FlagSet, o *Output, formats ...Output) {
	*o = formats[0]
	names := ""
	for i, f := range formats {
		if i > 0 {
			names += "|"
		}
		names += string(f)
	}
	fs.Func("output", "output format: "+names+" (default "+string(formats[0])+")", func(v string) error {
		for _, f := range formats {
			if Output(v) == f {
				*o = f
				return nil
			}
		}
		return fmt.Errorf("--output must be one of %s", names)
	})
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
