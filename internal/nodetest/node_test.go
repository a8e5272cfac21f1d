package nodetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const nodeFix = "apt-get install -y nodejs npm  (Node 20 or later; or from https://nodejs.org/en/download)"

// minNodeMajor is the oldest Node the package supports (package.json engines).
const minNodeMajor = 20

var (
	prepOnce sync.Once
	prepDir  string
	prepErr  error
)

// clientDir returns clients/node, installed and built, once per process.
func clientDir(t testing.TB) string {
	t.Helper()
	prepOnce.Do(func() { prepDir, prepErr = prepare() })
	testenv.Require(t, prepErr)
	return prepDir
}

func prepare() (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", &testenv.MissingError{What: "node (the Node client's tests)", Fix: nodeFix}
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("node --version: %w", err)
	}
	m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(bytes.TrimSpace(out))
	if m == nil {
		return "", fmt.Errorf("node --version printed %q", out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < minNodeMajor {
		return "", &testenv.MissingError{What: fmt.Sprintf("Node %d or later (have %s)", minNodeMajor, bytes.TrimSpace(out)), Fix: nodeFix}
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", &testenv.MissingError{What: "npm (installs the Node client's dependencies)", Fix: nodeFix}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "clients", "node")
	if err := npmCI(dir); err != nil {
		return "", err
	}
	if b, err := run(dir, 3*time.Minute, nil, "npm", "run", "--silent", "build"); err != nil {
		return "", fmt.Errorf("npm run build: %v\n%s", err, b)
	}
	return dir, nil
}

// npmCI runs npm ci unless node_modules was installed from this very lockfile.
func npmCI(dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	stamp := filepath.Join(dir, "node_modules", ".rotation-lock-sha256")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == hex.EncodeToString(sum[:]) {
		return nil
	}
	if b, err := run(dir, 5*time.Minute, nil, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, b)
	}
	return os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o644)
}

func run(dir string, timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// nodeTest runs the built Node test files (relative to dist/test) with env
// and fails t with the runner's output when any Node test fails.
func nodeTest(t *testing.T, env []string, files ...string) {
	t.Helper()
	dir := clientDir(t)
	args := []string{"--test", "--test-reporter=spec", "--test-concurrency=1"}
	for _, f := range files {
		args = append(args, filepath.Join("dist", "test", f))
	}
	start := time.Now()
	out, err := run(dir, 4*time.Minute, env, "node", args...)
	t.Logf("node %s (%s):\n%s", strings.Join(files, " "), time.Since(start).Round(time.Millisecond), tailLines(out, 200))
	if err != nil {
		t.Fatalf("node --test %s failed: %v", strings.Join(files, " "), err)
	}
}

func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
