package apikeystrategy_test

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/apikey"
)

// TestTheBuiltFunctionRotatesUnderTheRuntimeEmulator builds the bootstrap as
// Lambda runs it, starts it under aws-lambda-rie with its configuration in the
// environment (moto for AWS, the registration and test endpoints over TLS
// with their CA in APIKEY_CA_FILE), and drives one rotation with the local
// driver.
func TestTheBuiltFunctionRotatesUnderTheRuntimeEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bootstrap")
	}
	f := newFixture(t, fixtureOpts{realClock: true})
	bootstrap, err := testenv.BuildBootstrap("./functions/apikeyrotate")
	testenv.Require(t, err)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := f.svc.srv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(f.moto.Env(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30",
		"AWS_LAMBDA_FUNCTION_NAME=apikeyrotate",
		"LOG_LEVEL=debug",
		"APIKEY_KIND=apikey",
		"APIKEY_PREFIX=sk",
		"APIKEY_OVERLAP=24h",
		"APIKEY_VERIFIER_SECRET_ARN="+f.verifierID,
		"APIKEY_PEPPER_SECRET_ARN="+f.pepperID,
		"APIKEY_REGISTER_URL="+f.cfg.RegisterURL,
		"APIKEY_REGISTER_HMAC_SECRET_ARN="+f.hmacID,
		"APIKEY_TEST_URL="+f.cfg.TestURL,
		"APIKEY_CA_FILE="+caFile,
	)
	rie, err := testenv.StartRIE(bootstrap, env)
	testenv.Require(t, err)
	defer rie.Stop()

	d := &driver.Driver{SM: f.sm, Invoke: rie, LambdaARN: f.lambda, StepTimeout: 40 * time.Second, Attempts: 1}
	ctx := context.Background()
	if _, err := d.Rotate(ctx, f.callerID, ""); err != nil {
		t.Fatalf("rotation under the emulator failed: %v\nfunction output:\n%s", err, rie.Logs())
	}
	cur, prev := f.caller(t, "AWSCURRENT"), f.caller(t, "AWSPREVIOUS")
	if prev.KeyID != f.initial.KeyID || cur.KeyID == prev.KeyID {
		t.Fatal("the rotation did not move the keys")
	}
	v := f.verifier(t)
	for _, c := range []*apikey.CallerSecret{cur, prev} {
		if err := verifyCaller(ctx, v, c, time.Now()); err != nil {
			t.Fatalf("key %s: %v", c.KeyID, err)
		}
	}
	if regs, _ := f.reg.counts(); regs != 1 {
		t.Fatalf("%d registrations, want 1", regs)
	}
	logs := rie.Logs()
	for _, c := range []*apikey.CallerSecret{cur, prev} {
		if strings.Contains(logs, c.Key.Reveal()[len(c.Key.Reveal())-apikey.BodyLen-apikey.ChecksumLen:]) {
			t.Fatal("a plaintext key reached the function's output")
		}
	}
	if !strings.Contains(logs, `"step":"finishSecret"`) {
		t.Fatalf("the function's step logs are missing:\n%s", logs)
	}
}
