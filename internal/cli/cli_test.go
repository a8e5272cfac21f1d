package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type coded struct{ error }

func (coded) ExitCode() int { return 7 }

func TestExitCodesForEachKindOfOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{ErrHelp, ExitOK},
		{fmt.Errorf("%w: bad flag", ErrUsage), ExitUsage},
		{&Findings{Summary: "stuck"}, ExitFindings},
		{fmt.Errorf("wrapped: %w", &Findings{Summary: "stuck"}), ExitFindings},
		{coded{errors.New("refused")}, 7},
		{errors.New("AccessDenied"), ExitFailed},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestHelpListsEveryFlagOnStdoutAndFlagsMayFollowThePositional(t *testing.T) {
	var out bytes.Buffer
	c := New("tool cmd", "SECRET [flags]", "Does a thing.", &out)
	var a AWS
	a.Register(c.Flags)
	var o Output
	RegisterOutput(c.Flags, &o, Table, JSON)
	if _, err := c.Parse([]string{"--help"}, 1); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"usage: tool cmd SECRET [flags]", "Does a thing.", "-endpoint-url", "-region", "-output", "table|json", "exit codes"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("help lacks %q:\n%s", want, out.String())
		}
	}
	pos, err := c.Parse([]string{"my-secret", "--output", "json", "--region", "eu-west-1"}, 1)
	if err != nil || pos[0] != "my-secret" || o != JSON || a.Region != "eu-west-1" {
		t.Fatalf("%v %v %v %v", err, pos, o, a.Region)
	}
	if _, err := c.Parse([]string{"s", "--output", "xml"}, 1); Code(err) != ExitUsage {
		t.Fatalf("--output xml: %v", err)
	}
	if _, err := c.Parse([]string{"a", "b"}, 1); Code(err) != ExitUsage {
		t.Fatalf("two positionals: %v", err)
	}
}
