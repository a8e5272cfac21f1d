package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/rotation-suite/rotation/internal/buildinfo"
)

// Func runs one subcommand with the arguments after its name.
type Func func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Tool is a command-line tool made of subcommands: `NAME COMMAND [args]`.
type Tool struct {
	Name     string          // e.g. "rotate"
	Usage    string          // the tool's usage text
	Commands map[string]Func // by command name
}

// Run dispatches args the same way for every tool and returns the exit
// code: no arguments prints the usage to stderr (ExitUsage); -h, --help or
// help prints it to stdout; --version, -version or version prints the
// version; an unknown command is a usage error; a command's error is
// printed to stderr as "NAME COMMAND: error" and mapped by Code.
func (t *Tool) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, t.Usage)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, t.Usage)
		return ExitOK
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "%s %s\n", t.Name, buildinfo.Version())
		return ExitOK
	}
	f, ok := t.Commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n%s", t.Name, args[0], t.Usage)
		return ExitUsage
	}
	err := f(ctx, args[1:], stdout, stderr)
	code := Code(err)
	if err != nil && code != ExitOK {
		fmt.Fprintf(stderr, "%s %s: %v\n", t.Name, args[0], err)
	}
	return code
}
