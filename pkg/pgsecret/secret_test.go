package pgsecret

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

const pw = "s3cret-P@ss"

func app(extra string) string {
	return `{"engine":"postgres","host":"db.example.com","username":"app","password":"` + pw + `","dbname":"appdb"` + extra + `}`
}

func TestParseDefaultsAndPorts(t *testing.T) {
	for _, p := range []string{`5433`, `"5433"`} {
		s, err := Parse("x", []byte(app(`,"port":`+p)))
		if err != nil || s.PortOrDefault() != 5433 {
			t.Fatalf("port %s: %v %v", p, s, err)
		}
	}
	s, err := Parse("x", []byte(`{"host":"h","username":"app","password":"`+pw+`"}`))
	if err != nil || s.PortOrDefault() != DefaultPort || s.DBNameOrDefault() != DefaultDBName || s.SSLMode != SSLVerifyFull {
		t.Fatalf("defaults: %v %v", s, err)
	}
}

func TestParseRefusesBadValuesWithoutQuotingThePassword(t *testing.T) {
	for _, c := range []struct{ name, json, want string }{
		{"malformed JSON", `{"host":`, "not a JSON object"},
		{"not an object", `["a"]`, "not a JSON object"},
		{"trailing data", app("") + `{}`, "after its JSON object"},
		{"missing host", `{"username":"app","password":"` + pw + `"}`, `"host"`},
		{"missing password", `{"host":"h","username":"app"}`, `"password"`},
		{"wrong engine", app(`,"engine":"mysql"`), "engine"},
		{"port out of range", app(`,"port":70000`), "port"},
		{"port of the wrong type", app(`,"port":true`), "port"},
		{"password not a string", `{"host":"h","username":"app","password":12345678}`, `"password" must be a string`},
		{"host with a slash", `{"host":"h/x","username":"app","password":"` + pw + `"}`, "host"},
		{"unknown sslmode", app(`,"sslmode":"prefer"`), "no fallback"},
		{"pinned CA without a CA", app(`,"sslrootcertonly":true`), "nothing would be trusted"},
		{"pinned CA with require", app(`,"sslrootcertonly":"true","sslmode":"require","sslrootcertpem":"x"`), "only verify-full and verify-ca"},
		{"rootcertonly not a boolean", app(`,"sslrootcertonly":"yes"`), "true or false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("the value", []byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %s", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "the value") {
				t.Errorf("the error does not name the value: %v", err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("the error leaks the password: %v", err)
			}
		})
	}
}

func TestParseLoginTakesTheRDSManagedShapeAndIgnoresTLS(t *testing.T) {
	s, err := ParseLogin("x", []byte(`{"username":"master","password":"m4ster-pw","sslmode":"prefer"}`))
	if err != nil || s.Username != "master" || s.Host != "" {
		t.Fatalf("%v %v", s, err)
	}
	if _, err := ParseLogin("x", []byte(`{"engine":"mysql","username":"master","password":"m4ster-pw"}`)); err == nil {
		t.Fatal("a MySQL secret was accepted")
	}
}

func TestUnknownFieldsAreKept(t *testing.T) {
	in := `{"engine":"postgres","host":"h","port":"5432","username":"app","password":"old-password-1","dbname":"d","masterarn":"arn:x","proxy":{"a":[1,2]},"note":"keep me"}`
	s, err := Parse("x", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if raw, ok := s.Field("proxy"); !ok || string(raw) != `{"a":[1,2]}` {
		t.Fatalf("Field(proxy) = %s %v", raw, ok)
	}
	if _, ok := s.Field("absent"); ok {
		t.Fatal("an absent field is present")
	}
	out, err := s.WithCredentials("app_clone", "new-password-2")
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	json.Unmarshal(out, &got)
	json.Unmarshal([]byte(in), &want)
	want["username"], want["password"] = "app_clone", "new-password-2"
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("fields changed:\n got %s\nwant %s", gb, wb)
	}
}

func TestSecretNeverPrintsItsPassword(t *testing.T) {
	s, _ := Parse("x", []byte(app("")))
	for _, f := range []string{s.String(), s.GoString()} {
		if strings.Contains(f, pw) {
			t.Fatal(f)
		}
	}
}

func caPEM(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSConfigFollowsTheMode(t *testing.T) {
	defaults := x509.NewCertPool()
	parse := func(extra string) *Secret {
		s, err := Parse("x", []byte(app(extra)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	full, err := parse(`,"sslservername":"db.internal"`).TLSConfig(defaults)
	if err != nil || full.InsecureSkipVerify || full.ServerName != "db.internal" || full.RootCAs != defaults || full.MinVersion < 0x0303 {
		t.Fatalf("verify-full: %+v %v", full, err)
	}
	ca, err := parse(`,"sslmode":"verify-ca"`).TLSConfig(defaults)
	if err != nil || !ca.InsecureSkipVerify || ca.VerifyConnection == nil {
		t.Fatalf("verify-ca: %+v %v", ca, err)
	}
	req, err := parse(`,"sslmode":"require"`).TLSConfig(defaults)
	if err != nil || !req.InsecureSkipVerify || req.VerifyConnection != nil {
		t.Fatalf("require: %+v %v", req, err)
	}
	if _, err := parse(`,"sslmode":"disable"`).TLSConfig(defaults); err != ErrPlaintext {
		t.Fatalf("disable: %v", err)
	}
	if _, err := parse(`,"sslrootcertpem":"not a certificate"`).TLSConfig(defaults); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a bad sslrootcertpem: %v", err)
	}
}

func TestRootsAddOrPinTheSecretsCA(t *testing.T) {
	p, other := caPEM(t), caPEM(t)
	defaults := x509.NewCertPool()
	defaults.AppendCertsFromPEM(other)
	before := defaults.Clone()
	both := defaults.Clone()
	both.AppendCertsFromPEM(p)
	only := x509.NewCertPool()
	only.AppendCertsFromPEM(p)

	added, err := (&Secret{SSLRootCert: p}).Roots(defaults)
	if err != nil || !added.Equal(both) {
		t.Fatalf("added: %v", err)
	}
	if !defaults.Equal(before) {
		t.Fatal("the defaults were changed")
	}
	pinned, err := (&Secret{SSLRootCert: p, SSLRootCertOnly: true}).Roots(defaults)
	if err != nil || !pinned.Equal(only) {
		t.Fatalf("pinned: %v", err)
	}
	if same, _ := (&Secret{}).Roots(defaults); same != defaults {
		t.Fatal("no CA in the secret: the defaults are not used as they are")
	}
}
