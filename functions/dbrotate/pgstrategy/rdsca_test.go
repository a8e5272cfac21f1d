package pgstrategy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func packagedCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatalf("%s: certificate %d does not parse: %v", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if strings.TrimSpace(string(b)) != "" {
		t.Fatalf("%s: trailing data that is not PEM", path)
	}
	return out
}

// Every packaged certificate is a self-signed CA that has not expired, and
// certs/README.md lists exactly these certificates with their SHA-256
// fingerprints (so the documented provenance cannot drift from the data).
func TestPackagedRootsAreUnexpiredSelfSignedCAsListedWithTheirFingerprints(t *testing.T) {
	documented := map[string]string{} // fingerprint → subject CN
	f, err := os.Open("certs/README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "|")
		if len(cols) == 5 && strings.HasPrefix(strings.TrimSpace(cols[3]), "`") {
			documented[strings.Trim(strings.TrimSpace(cols[3]), "`")] = strings.TrimSpace(cols[1])
		}
	}
	now := time.Now()
	seen := 0
	cns := map[string]bool{}
	for _, path := range pgstrategy.PackagedBundles {
		certs := packagedCerts(t, path)
		if len(certs) == 0 {
			t.Fatalf("%s holds no certificate", path)
		}
		for _, c := range certs {
			name := c.Subject.CommonName
			cns[name] = true
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("%s: %q is not a CA", path, name)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("%s: %q is not self-signed: %v", path, name, err)
			}
			if now.After(c.NotAfter) || now.Before(c.NotBefore) {
				t.Errorf("%s: %q is not valid now (%s – %s)", path, name, c.NotBefore, c.NotAfter)
			}
			fp := fmt.Sprintf("%X", sha256.Sum256(c.Raw))
			if documented[fp] != name {
				t.Errorf("%s: %q (SHA-256 %s) is not listed in certs/README.md", path, name, fp)
			}
			seen++
		}
	}
	if seen != len(documented) {
		t.Errorf("certs/README.md lists %d certificates, the bundles hold %d", len(documented), seen)
	}
	for _, want := range []string{"Amazon RDS us-east-1 Root CA RSA2048 G1", "Amazon RDS us-east-1 Root CA RSA4096 G1", "Amazon RDS us-east-1 Root CA ECC384 G1",
		"Amazon RDS eu-west-1 Root CA RSA2048 G1", "Amazon Root CA 1", "Starfield Services Root Certificate Authority - G2"} {
		if !cns[want] {
			t.Errorf("the packaged bundle lacks %q", want)
		}
	}
	pemAll, err := pgstrategy.PackagedRootsPEM()
	if err != nil || !x509.NewCertPool().AppendCertsFromPEM(pemAll) {
		t.Fatalf("the embedded bundle does not load: %v", err)
	}
}

// The packaged bundle is what dbrotate trusts when neither the secret nor
// the environment gives a CA: with the local server's CA placed in the very
// bundle file the function embeds, a verify-full rotation succeeds; without
// it, the same rotation fails as untrusted and changes nothing.
func TestVerifyFullTrustsThePackagedBundleWithNoCAInTheSecret(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	for _, withCA := range []bool{true, false} {
		t.Run(map[bool]string{true: "server CA in the packaged bundle", false: "server CA not in the packaged bundle"}[withCA], func(t *testing.T) {
			files := fstest.MapFS{}
			for _, p := range pgstrategy.PackagedBundles {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if withCA && p == pgstrategy.PackagedBundles[0] {
					b = append(append(b, '\n'), s.pg.CACertPEM...)
				}
				files[p] = &fstest.MapFile{Data: b, Mode: fs.ModePerm}
			}
			defer pgstrategy.UsePackagedFS(files)()

			cfg := testConfig(s)
			cfg.CABundlePEM = nil // no DB_CA_BUNDLE_FILE
			user, pw := uniq("rdsca"), randomPassword(t)
			s.createRole(t, user, pw, "")
			arn := s.createSecret(t, uniq("rdsca"), s.appSecret(user, pw, map[string]any{"sslmode": "verify-full"}))
			before := s.roleState(t, user)
			eng, _ := s.engine(t, cfg)
			d := s.driver(eng)
			d.Attempts = 1
			_, err := d.Rotate(ctx, arn, "")
			if withCA {
				if err != nil {
					t.Fatalf("verify-full with the CA in the packaged bundle: %v", err)
				}
				cur, _ := s.value(t, arn, rotation.StageCurrent)
				if err := s.login(ctx, cur); err != nil {
					t.Fatal(err)
				}
				return
			}
			if rotation.ClassOf(err) != rotation.ClassTLS || !strings.Contains(err.Error(), "not trusted") {
				t.Fatalf("want a TLS 'not trusted' error, got %v", err)
			}
			if s.roleState(t, user) != before {
				t.Fatal("the role changed")
			}
		})
	}
}

// bundleFS is the packaged bundle, with extra appended to its first file.
func bundleFS(t *testing.T, extra []byte) fs.FS {
	t.Helper()
	files := fstest.MapFS{}
	for _, p := range pgstrategy.PackagedBundles {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(extra) > 0 && p == pgstrategy.PackagedBundles[0] {
			b = append(append(b, '\n'), extra...)
		}
		files[p] = &fstest.MapFile{Data: b, Mode: fs.ModePerm}
	}
	return files
}

// "sslrootcertonly": true pins the secret's CA: a server whose certificate
// chains to a root the function trusts by default (the packaged bundle, or
// DB_CA_BUNDLE_FILE) is refused unless that root is the secret's own, and
// a server signed by the secret's CA is accepted with no default root.
func TestSSLRootCertOnlyTrustsTheSecretsCAAloneNotTheDefaultRoots(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	privateCA, err := testenv.NewCA("a team's private CA")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		bundle    []byte // appended to the packaged bundle
		envBundle []byte // DB_CA_BUNDLE_FILE
		extra     map[string]any
		trusted   bool
	}{
		{name: "default: the server's CA in the packaged bundle is trusted", bundle: s.pg.CACertPEM,
			extra: map[string]any{"sslrootcertpem": string(privateCA.CertPEM)}, trusted: true},
		{name: "opt-out: the packaged bundle's CA is refused", bundle: s.pg.CACertPEM,
			extra: map[string]any{"sslrootcertpem": string(privateCA.CertPEM), "sslrootcertonly": true}},
		{name: "opt-out: DB_CA_BUNDLE_FILE's CA is refused", envBundle: s.pg.CACertPEM,
			extra: map[string]any{"sslrootcertpem": string(privateCA.CertPEM), "sslrootcertonly": "true"}},
		{name: "opt-out: the secret's own CA is trusted, alone", extra: map[string]any{"sslrootcertpem": string(s.pg.CACertPEM), "sslrootcertonly": true}, trusted: true},
		{name: "opt-out with verify-ca: the packaged bundle's CA is refused", bundle: s.pg.CACertPEM,
			extra: map[string]any{"sslmode": "verify-ca", "sslrootcertpem": string(privateCA.CertPEM), "sslrootcertonly": true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer pgstrategy.UsePackagedFS(bundleFS(t, c.bundle))()
			cfg := testConfig(s)
			cfg.CABundlePEM = c.envBundle
			user, pw := uniq("pin"), randomPassword(t)
			s.createRole(t, user, pw, "")
			arn := s.createSecret(t, uniq("pin"), s.appSecret(user, pw, c.extra))
			before := s.roleState(t, user)
			eng, _ := s.engine(t, cfg)
			d := s.driver(eng)
			d.Attempts = 1
			_, err := d.Rotate(ctx, arn, "")
			if c.trusted {
				if err != nil {
					t.Fatalf("want the rotation to succeed, got %v", err)
				}
				return
			}
			if rotation.ClassOf(err) != rotation.ClassTLS || !strings.Contains(err.Error(), "not trusted") {
				t.Fatalf("want a TLS 'not trusted' error, got %v", err)
			}
			if s.roleState(t, user) != before {
				t.Fatal("the role changed")
			}
			cur, _ := s.value(t, arn, rotation.StageCurrent)
			if err := s.login(ctx, cur); err != nil {
				t.Fatalf("the current credential no longer works: %v", err)
			}
		})
	}
}

// The pin is refused, before anything is done, when it could not pin
// anything: no CA in the secret, or a mode that verifies no chain.
func TestSSLRootCertOnlyWithoutACAOrWithoutVerificationIsAnInputError(t *testing.T) {
	base := map[string]any{"host": "db.example", "username": "app", "password": "pw-not-shown"}
	for name, extra := range map[string]map[string]any{
		"no sslrootcertpem":   {"sslrootcertonly": true},
		"sslmode require":     {"sslrootcertonly": true, "sslmode": "require", "sslrootcertpem": "-----BEGIN CERTIFICATE-----"},
		"not a boolean":       {"sslrootcertonly": "yes", "sslrootcertpem": "-----BEGIN CERTIFICATE-----"},
		"a number is no bool": {"sslrootcertonly": 1, "sslrootcertpem": "-----BEGIN CERTIFICATE-----"},
	} {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		raw, _ := json.Marshal(m)
		_, err := pgstrategy.ParseSecret("the AWSCURRENT secret value", raw)
		if rotation.ClassOf(err) != rotation.ClassInput || !strings.Contains(err.Error(), "sslrootcertonly") || strings.Contains(err.Error(), "pw-not-shown") {
			t.Errorf("%s: want an input error naming sslrootcertonly, got %v", name, err)
		}
	}
	raw, _ := json.Marshal(map[string]any{"host": "db.example", "username": "app", "password": "pw", "sslrootcertpem": "x", "sslrootcertonly": false})
	if sec, err := pgstrategy.ParseSecret("v", raw); err != nil || sec.SSLRootCertOnly {
		t.Fatalf("false: %v %+v", err, sec)
	}
}
