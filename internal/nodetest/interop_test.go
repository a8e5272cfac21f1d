package nodetest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/apikey"
)

// offlineEnv points the Node tests at the Go vectors and at out, where they
// write what the Go side checks.
func offlineEnv(t *testing.T, out string) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"NODETEST_KAT_DIR=" + filepath.Join(root, "internal", "nodetest", "testdata"),
		"NODETEST_ENVELOPE_KAT_DIR=" + filepath.Join(root, "pkg", "envelope", "testdata"),
		"NODETEST_OUT_DIR=" + out,
	}
}

// TestNodeReproducesTheGoVectorsAndGoVerifiesNodeOutput runs the Node tests
// that need no servers (they reproduce the Go known-answer vectors), then
// checks in Go what they produced.
func TestNodeReproducesTheGoVectorsAndGoVerifiesNodeOutput(t *testing.T) {
	out := t.TempDir()
	nodeTest(t, offlineEnv(t, out), "apikey.test.js")

	t.Run("webhook signatures made in Node verify in pkg/apikey", func(t *testing.T) {
		var sigs []sigVector
		readJSON(t, filepath.Join(out, "webhooks.json"), &sigs)
		if len(sigs) == 0 {
			t.Fatal("Node wrote no signatures")
		}
		for _, s := range sigs {
			if err := apikey.VerifySignatureHeader([]byte(s.Secret), s.Header, []byte(s.Body), time.Unix(s.Unix, 0), apikey.DefaultTolerance); err != nil {
				t.Errorf("signature over %q: %v", s.Body, err)
			}
			if err := apikey.VerifySignatureHeader([]byte(s.Secret), s.Header, []byte(s.Body+"x"), time.Unix(s.Unix, 0), apikey.DefaultTolerance); err == nil {
				t.Errorf("a signature verified over another body")
			}
		}
	})
}
