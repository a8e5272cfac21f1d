package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/testenv"
)

func TestEverySubcommandHelpListsItsFlagsAndExitsZero(t *testing.T) {
	want := map[string][]string{
		"now":     {"-wait", "-timeout", "-queue-url", "-output", "-endpoint-url", "-region"},
		"status":  {"-output", "-endpoint-url", "-region"},
		"unstick": {"-older-than", "-dry-run", "-endpoint-url"},
		"audit":   {"-policy", "-output", "-page-size", "-endpoint-url"},
	}
	for cmd, flags := range want {
		for _, h := range []string{"--help", "-h"} {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{cmd, h}, &out, &errOut); code != 0 {
				t.Fatalf("%s %s: exit %d, stderr %s", cmd, h, code, errOut.String())
			}
			s := out.String()
			for _, f := range append(flags, "usage: rotate "+cmd, "exit codes") {
				if !strings.Contains(s, f) {
					t.Fatalf("%s %s does not mention %q:\n%s", cmd, h, f, s)
				}
			}
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &out); code != 0 || !strings.Contains(out.String(), "rotate audit") {
		t.Fatalf("--help: exit %d\n%s", code, out.String())
	}
}

func TestVersionIsPrinted(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "rotate ") {
		t.Fatalf("exit %d: %q", code, out.String())
	}
}

func goTool(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
			return p
		}
		t.Fatal("no go tool in PATH")
	}
	return gobin
}

// The operator tool must not carry the test harness, the local driver, the
// database driver, the rotation engine or the strategies, nor the SDK
// clients of services it does not call through the SDK: it is installed on
// operators' machines and CI runners, and each of those is megabytes.
func TestOperatorToolLinksNeitherTestingNorTheEngineNorUnusedSDKClients(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const mod = "github.com/rotation-suite/rotation/"
	const sdk = "github.com/aws/aws-sdk-go-v2/service/"
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "testing", strings.HasPrefix(dep, "testing/"),
			strings.Contains(dep, "jackc/pgx"),
			strings.HasPrefix(dep, mod+"internal/testenv"),
			strings.HasPrefix(dep, mod+"internal/driver"),
			strings.HasPrefix(dep, mod+"internal/smfake"),
			strings.HasPrefix(dep, mod+"internal/inproc"),
			strings.HasPrefix(dep, mod+"pkg/"),
			strings.HasPrefix(dep, mod+"functions/"),
			strings.HasPrefix(dep, sdk+"sns"), strings.HasPrefix(dep, sdk+"kms"),
			strings.HasPrefix(dep, sdk+"lambda"), strings.HasPrefix(dep, sdk+"sqs"):
			t.Errorf("cmd/rotate links %s", dep)
		}
	}
}

// maxPlainBuild is the size a plain `go build` / `go install` of the
// operator tool (no -ldflags stripping, symbols and DWARF kept) must stay
// under: 15 MB.
const maxPlainBuild = 15_000_000

// Size is a deliverable of the operator tool, not a timing: a plain build,
// as `go install .../cmd/rotate@version` makes it, stays under 15 MB.
func TestPlainBuildIsUnder15MB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	exe := filepath.Join(t.TempDir(), "rotate")
	cmd := exec.Command(goTool(t), "build", "-o", exe, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plain go build of cmd/rotate: %d bytes", fi.Size())
	if fi.Size() >= maxPlainBuild {
		t.Errorf("a plain build of rotate is %d bytes, want < %d: something heavy was linked (go tool nm -size -sort size shows what)", fi.Size(), maxPlainBuild)
	}
}

// `go install` puts a static binary under 15 MB that works from any
// directory (no go.mod needed at run time) and prints the version the
// Makefile stamps with -ldflags -X.
func TestInstalledBinaryIsSmallStaticAndWorksOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := t.TempDir()
	cmd := exec.Command(goTool(t), "install", "-trimpath", "-ldflags=-s -w -X github.com/rotation-suite/rotation/internal/buildinfo.version=v9.8.7-test", ".")
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	exe := filepath.Join(bin, "rotate")
	fi, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= 15<<20 {
		t.Errorf("rotate is %d bytes, want < 15 MiB", fi.Size())
	}
	t.Logf("rotate: %.1f MiB", float64(fi.Size())/(1<<20))
	elsewhere := t.TempDir()
	v := exec.Command(exe, "--version")
	v.Dir = elsewhere
	if out, err := v.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "rotate v9.8.7-test" {
		t.Fatalf("--version: %v %q", err, out)
	}
	for _, args := range [][]string{{"status", "--help"}, {"audit", "--help"}} {
		c := exec.Command(exe, args...)
		c.Dir = elsewhere
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("rotate %v outside the repository: %v\n%s", args, err, out)
		}
	}
	// A real call (to an endpoint that refuses) fails with an AWS error,
	// not a build or go.mod error.
	c := exec.Command(exe, "status", "some-secret", "--endpoint-url", "http://127.0.0.1:9", "--region", testenv.Region)
	c.Dir = elsewhere
	c.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_MAX_ATTEMPTS=1")
	out, err := c.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Contains(string(out), "go.mod") || !strings.Contains(string(out), "DescribeSecret") {
		t.Fatalf("want exit 1 naming DescribeSecret, got %v:\n%s", err, out)
	}
}

func TestStatusJSONShowsScheduleAndExits3OnlyWhenStuck(t *testing.T) {
	w := newWorld(t)
	arn := w.secret(t)
	args := []string{"status", arn, "--output", "json", "--endpoint-url", w.moto.Endpoint, "--region", testenv.Region}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("a healthy secret: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var j map[string]any
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("status --output json is not JSON: %v\n%s", err, out.String())
	}
	if j["stuck"] != false || j["currentHasValue"] != true {
		t.Fatalf("healthy secret: %s", out.String())
	}
	token := w.stick(t, arn, false)
	out.Reset()
	if code := run(context.Background(), args, &out, &errOut); code != 3 {
		t.Fatalf("a stuck secret: exit %d, want 3\n%s", code, out.String())
	}
	j = nil
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	sched, _ := j["schedule"].(map[string]any)
	if j["stuck"] != true || j["pendingVersion"] != token || !strings.Contains(j["why"].(string), "createSecret never completed") || sched["automaticallyAfterDays"] != float64(30) {
		t.Fatalf("stuck secret JSON: %s", out.String())
	}
	if strings.Contains(out.String(), "secret-value") {
		t.Fatal("status printed a secret value")
	}
	// The table form names the schedule and the next rotation.
	out.Reset()
	run(context.Background(), []string{"status", arn, "--endpoint-url", w.moto.Endpoint, "--region", testenv.Region}, &out, &errOut)
	for _, want := range []string{"schedule    every 30 days", "current ", "STUCK"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}
