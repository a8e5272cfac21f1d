package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

// Every sample event succeeds against the seeded local stack, each step on
// its own (earlier steps run as preparation) and all four in order.
func TestInvokeSucceedsForEveryFunctionAndStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto, PostgreSQL and the runtime emulator")
	}
	for _, fn := range functionNames {
		t.Run(fn, func(t *testing.T) {
			for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret", "all"} {
				var out bytes.Buffer
				if code := run(context.Background(), []string{"invoke", "--function", fn, "--step", step}, &out, &out); code != 0 {
					if strings.Contains(out.String(), "not installed") && !testenv.InCI() {
						t.Skip(out.String())
					}
					t.Fatalf("invoke %s %s: exit %d\n%s", fn, step, code, out.String())
				}
				s := out.String()
				if !strings.Contains(s, "invoking "+map[bool]string{true: "finishSecret", false: step}[step == "all"]) || !strings.Contains(s, "← this rotation") {
					t.Fatalf("invoke %s %s: output lacks the step or the labels:\n%s", fn, step, s)
				}
				if step == "all" || step == "finishSecret" {
					if !strings.Contains(s, "AWSCURRENT  ← this rotation") {
						t.Fatalf("invoke %s %s: the new version did not end AWSCURRENT:\n%s", fn, step, s)
					}
				}
			}
		})
	}
}

// `make invoke` is wired to the same command.
func TestMakeInvokeRunsAllSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-s", "invoke", "FUNCTION=apikeyrotate")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "the service removes AWSPENDING") {
		t.Fatalf("make invoke: %v\n%s", err, out)
	}
	cmd = exec.Command("make", "-s", "invoke")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "usage: make invoke") {
		t.Fatalf("make invoke without FUNCTION: %v\n%s", err, out)
	}
}

// On a machine whose python3 lacks moto and cfn-lint (Debian's refuses a
// system-wide pip install), scripts/prereqs.sh creates .venv and installs the
// pinned tools there; when that cannot work (here: no package index) it
// stops non-zero with the exact command. The script runs on a copy so the
// checkout's .venv is untouched.
func TestPrereqsCreatesAVenvWhenPython3LacksTheTools(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a virtual environment")
	}
	real, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"prereqs.sh", "requirements-dev.txt"} {
		b, err := os.ReadFile(filepath.Join(root, "scripts", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scripts", f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A python3 without site-packages: no moto, no cfn-lint.
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "python3"), []byte("#!/bin/sh\nexec "+real+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(dir, "scripts", "prereqs.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "PIP_INDEX_URL=http://127.0.0.1:9/simple", "PIP_RETRIES=0", "PIP_TIMEOUT=2")
	out, err := cmd.CombinedOutput()
	s := string(out)
	if _, statErr := os.Stat(filepath.Join(dir, ".venv", "bin", "python3")); statErr != nil {
		t.Fatalf("no .venv was created:\n%s", s)
	}
	if err == nil || !strings.Contains(s, "creating "+filepath.Join(dir, ".venv")) || !strings.Contains(s, ".venv/bin/pip install -r scripts/requirements-dev.txt") {
		t.Fatalf("want a non-zero exit naming the exact command, got %v:\n%s", err, s)
	}
}
