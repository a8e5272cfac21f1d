package fnmain

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/internal/buildinfo"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

// The first log line of every function names its version, so a log shows
// which build ran a rotation.
func TestStartUpLogLineNamesTheVersion(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	env := map[string]string{"AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "rotate-db", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
	for k, v := range env {
		t.Setenv(k, v)
	}
	NewHandler(context.Background(), func(context.Context, Deps) (rotation.Strategy, error) {
		return nil, rotation.NewError(rotation.ClassConfiguration, "test", "no strategy in this test", errors.New("none"))
	}, func(k string) string { return env[k] })
	os.Stdout = old
	w.Close()
	out, _ := io.ReadAll(r)
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.Contains(first, `"msg":"rotation function starting"`) || !strings.Contains(first, `"version":"`+buildinfo.Version()+`"`) || !strings.Contains(first, `"function":"rotate-db"`) {
		t.Fatalf("first log line: %s", first)
	}
}
