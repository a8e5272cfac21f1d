package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDemoPassesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo starts the whole local stack")
	}
	var out bytes.Buffer
	if err := cmdDemo(context.Background(), nil, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "DEMO PASSED") {
		t.Fatalf("no pass line:\n%s", out.String())
	}
}

func TestUsageErrorsExitWithCode2AndHelpExitsZero(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{}, {"bogus"}, {"local", "s", "--function", "nope", "--endpoint-url", "http://x"}, {"invoke", "--function", "dbrotate"}} {
		if code := run(context.Background(), args, &out, &out); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
	for _, cmd := range []string{"local", "invoke", "demo"} {
		out.Reset()
		if code := run(context.Background(), []string{cmd, "--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "usage: devtool "+cmd) {
			t.Fatalf("%s --help: exit %d\n%s", cmd, code, out.String())
		}
	}
}
