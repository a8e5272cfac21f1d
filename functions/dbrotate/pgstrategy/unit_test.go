package pgstrategy

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotation-suite/rotation/internal/password"
	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/rotation"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// testPolicy is a valid password policy for strategies built in tests.
var testPolicy = password.Policy{Length: password.DefaultLength, Exclude: password.DefaultExclude}

// mustNew is New for a configuration the test knows to be valid.
func mustNew(t testing.TB, cfg Config) *Strategy {
	t.Helper()
	st, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a cert"), 0o600)
	t.Run("defaults", func(t *testing.T) {
		c, err := ConfigFromEnv(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if c.Password.Length != 32 || c.Password.Exclude != password.DefaultExclude || c.OutgoingGrace != DefaultOutgoingGrace || c.AllowPlaintext {
			t.Fatalf("unexpected defaults %+v", c)
		}
	})
	t.Run("settings are read", func(t *testing.T) {
		c, err := ConfigFromEnv(env(map[string]string{EnvPasswordLength: "40", EnvExcludeCharacters: "xyz", EnvOutgoingGrace: "7d", EnvExcludeNumbers: "true", EnvAllowPlaintext: "true"}))
		if err != nil {
			t.Fatal(err)
		}
		if c.Password.Length != 40 || c.Password.Exclude != "xyz" || c.OutgoingGrace != 7*24*time.Hour || !c.Password.NoDigits || !c.AllowPlaintext {
			t.Fatalf("settings not applied: %+v", c)
		}
	})
	t.Run("grace 0 disables the expiry", func(t *testing.T) {
		c, err := ConfigFromEnv(env(map[string]string{EnvOutgoingGrace: "0"}))
		if err != nil || c.OutgoingGrace != 0 {
			t.Fatalf("grace %v err %v", c.OutgoingGrace, err)
		}
	})
	t.Run("every problem is reported at once as a configuration error", func(t *testing.T) {
		_, err := ConfigFromEnv(env(map[string]string{EnvPasswordLength: "abc", EnvOutgoingGrace: "soon", EnvCABundleFile: bad, EnvExcludeNumbers: "maybe"}))
		if rotation.ClassOf(err) != rotation.ClassConfiguration {
			t.Fatalf("class %v: %v", rotation.ClassOf(err), err)
		}
		for _, want := range []string{EnvPasswordLength, EnvOutgoingGrace, EnvCABundleFile, EnvExcludeNumbers} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
	})
	t.Run("too short a password is refused", func(t *testing.T) {
		if _, err := ConfigFromEnv(env(map[string]string{EnvPasswordLength: "8"})); rotation.ClassOf(err) != rotation.ClassConfiguration {
			t.Fatalf("want configuration error, got %v", err)
		}
	})
	t.Run("an alphabet that is too small is refused", func(t *testing.T) {
		if _, err := ConfigFromEnv(env(map[string]string{EnvExcludeLowercase: "true", EnvExcludeUppercase: "true", EnvExcludePunctuation: "true", EnvExcludeCharacters: "0123"})); err == nil {
			t.Fatal("want an error")
		}
	})
	t.Run("the grace is a duration of the one grammar, within its bounds", func(t *testing.T) {
		for v, want := range map[string]time.Duration{"90m": 90 * time.Minute, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute, "1m": time.Minute, "3650d": 3650 * 24 * time.Hour} {
			c, err := ConfigFromEnv(env(map[string]string{EnvOutgoingGrace: v}))
			if err != nil || c.OutgoingGrace != want {
				t.Errorf("%s: grace %v err %v", v, c.OutgoingGrace, err)
			}
		}
		// A bare number (once read as seconds) has no unit and is refused.
		for _, v := range []string{"86400", "30s", "3651d", "-1h", "soon"} {
			_, err := ConfigFromEnv(env(map[string]string{EnvOutgoingGrace: v}))
			if rotation.ClassOf(err) != rotation.ClassConfiguration || !strings.Contains(err.Error(), EnvOutgoingGrace) {
				t.Errorf("%s: want a configuration error naming %s, got %v", v, EnvOutgoingGrace, err)
			}
		}
	})
	t.Run("risky settings are warnings", func(t *testing.T) {
		c, err := ConfigFromEnv(env(map[string]string{EnvAllowPlaintext: "true", EnvOutgoingGrace: "0"}))
		if err != nil || len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0], EnvAllowPlaintext) || !strings.Contains(c.Warnings[1], EnvOutgoingGrace) {
			t.Fatalf("warnings %q err %v", c.Warnings, err)
		}
		if c, _ := ConfigFromEnv(env(nil)); len(c.Warnings) != 0 {
			t.Fatalf("warnings for the defaults: %q", c.Warnings)
		}
	})
}

func TestNewChecksAConfigBuiltDirectly(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no password policy": {},
		"too short a grace":  {Password: testPolicy, OutgoingGrace: time.Second},
		"too long a grace":   {Password: testPolicy, OutgoingGrace: 3651 * 24 * time.Hour},
		"a CA bundle no PEM": {Password: testPolicy, CABundlePEM: []byte("not a cert")},
		"a tiny alphabet":    {Password: password.Policy{Length: 32, NoLower: true, NoUpper: true, NoPunctuation: true, Exclude: "0123"}},
	} {
		if _, err := New(cfg, Deps{}); rotation.ClassOf(err) != rotation.ClassConfiguration {
			t.Errorf("%s: want a configuration error, got %v", name, err)
		}
	}
	for _, g := range []time.Duration{0, time.Minute, DefaultOutgoingGrace} {
		st, err := New(Config{Password: testPolicy, OutgoingGrace: g}, Deps{})
		if err != nil {
			t.Fatalf("grace %v: %v", g, err)
		}
		st.Close()
	}
}

func TestParseSecret(t *testing.T) {
	ok := func(extra string) string {
		return `{"engine":"postgres","host":"db.example.com","username":"app","password":"s3cret-P@ss","dbname":"appdb"` + extra + `}`
	}
	t.Run("port as number and as string", func(t *testing.T) {
		for _, p := range []string{`5433`, `"5433"`} {
			s, err := ParseSecret("x", []byte(ok(`,"port":`+p)))
			if err != nil || s.PortOrDefault() != 5433 {
				t.Fatalf("port %s: %v %v", p, s, err)
			}
		}
		s, err := ParseSecret("x", []byte(ok("")))
		if err != nil || s.PortOrDefault() != 5432 || s.SSLMode != pgsecret.SSLVerifyFull {
			t.Fatalf("defaults: %v %v", s, err)
		}
	})
	bad := []struct{ name, json, want string }{
		{"malformed JSON", `{"host":`, "not a JSON object"},
		{"not an object", `["a"]`, "not a JSON object"},
		{"trailing data", ok("") + `{}`, "after its JSON object"},
		{"missing host", `{"username":"app","password":"s3cret-P@ss"}`, `"host"`},
		{"missing username", `{"host":"h","password":"s3cret-P@ss"}`, `"username"`},
		{"missing password", `{"host":"h","username":"app"}`, `"password"`},
		{"wrong engine", ok(`,"engine":"mysql"`), "engine"},
		{"port out of range", ok(`,"port":70000`), "port"},
		{"port not a number", ok(`,"port":"fivefourthreetwo"`), "port"},
		{"port of the wrong type", ok(`,"port":true`), "port"},
		{"username with a quote", `{"host":"h","username":"app\"; DROP ROLE x; --","password":"s3cret-P@ss"}`, "may contain only"},
		{"username with a semicolon", `{"host":"h","username":"app;x","password":"s3cret-P@ss"}`, "may contain only"},
		{"username with a comment", `{"host":"h","username":"app--x","password":"s3cret-P@ss"}`, "may contain only"},
		{"username too long", `{"host":"h","username":"` + strings.Repeat("a", 64) + `","password":"s3cret-P@ss"}`, "at most 63"},
		{"reserved username", `{"host":"h","username":"pg_monitor","password":"s3cret-P@ss"}`, "reserved"},
		{"public is not a role", `{"host":"h","username":"PUBLIC","password":"s3cret-P@ss"}`, "reserved"},
		{"unknown sslmode", ok(`,"sslmode":"prefer"`), "no fallback"},
		{"userpair not two names", ok(`,"userpair":["app"]`), "exactly two"},
		{"userpair without the user", ok(`,"userpair":["a1","a2"]`), "not one of"},
		{"userpair with a hostile name", ok(`,"userpair":["app","x'y"]`), "may contain only"},
		{"host with a slash", `{"host":"h/x","username":"app","password":"s3cret-P@ss"}`, "host"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSecret("the AWSCURRENT secret value", []byte(c.json))
			if err == nil {
				t.Fatal("accepted")
			}
			if rotation.ClassOf(err) != rotation.ClassInput {
				t.Errorf("class %s, want input", rotation.ClassOf(err))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret-P@ss") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestSecretNeverPrintsItsPassword(t *testing.T) {
	s, _ := ParseSecret("x", []byte(`{"host":"h","username":"app","password":"s3cret-P@ss"}`))
	for _, f := range []string{s.String(), s.GoString()} {
		if strings.Contains(f, "s3cret") {
			t.Fatal(f)
		}
	}
}

func TestAdminSecretShapes(t *testing.T) {
	if _, err := ParseAdminSecret([]byte(`{"username":"master","password":"m4ster-pw"}`)); err != nil {
		t.Fatalf("RDS-managed shape refused: %v", err)
	}
	if _, err := ParseAdminSecret([]byte(`{"username":"master"}`)); err == nil {
		t.Fatal("admin secret without password accepted")
	}
	if _, err := ParseAdminSecret([]byte(`{"engine":"mysql","username":"master","password":"m4ster-pw"}`)); err == nil {
		t.Fatal("mysql admin secret accepted")
	}
}

func TestOtherRole(t *testing.T) {
	cases := []struct{ user, pair, want, err string }{
		{"app", "", "app_clone", ""},
		{"app_clone", "", "app", ""},
		{"app_blue", `["app_blue","app_green"]`, "app_green", ""},
		{"app_green", `["app_blue","app_green"]`, "app_blue", ""},
		{strings.Repeat("a", 60), "", "", "too long"},
		{"_clone", "", "", "not a role name"},
	}
	for _, c := range cases {
		j := `{"host":"h","username":"` + c.user + `","password":"pw-123456","masterarn":"arn:m"`
		if c.pair != "" {
			j += `,"userpair":` + c.pair
		}
		s, err := ParseSecret("x", []byte(j+"}"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := otherRole(s)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: want error %q, got %v", c.user, c.err, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q %v, want %q", c.user, got, err, c.want)
		}
	}
}

func TestScramVerifierShapeAndValues(t *testing.T) {
	v, err := ScramVerifier("correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	if !verifierPattern.MatchString(v) || !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") {
		t.Fatalf("bad shape %q", v)
	}
	v2, _ := ScramVerifier("correct-horse")
	if v == v2 {
		t.Fatal("two verifiers share a salt")
	}
	// RFC 7677's SCRAM-SHA-256 example: password "pencil", salt
	// W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; the server signature in
	// the example is derived from ServerKey, and StoredKey = H(ClientKey).
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	got, err := scramVerifierWithSalt("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(strings.SplitN(got, "$", 3)[2], ":")
	stored, _ := base64.StdEncoding.DecodeString(parts[0])
	serverKey, _ := base64.StdEncoding.DecodeString(parts[1])
	// Recompute the example's ServerSignature and ClientProof check from
	// the derived keys.
	authMsg := "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	sig := hmacSHA256(serverKey, authMsg)
	if base64.StdEncoding.EncodeToString(sig) != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("ServerSignature does not match RFC 7677")
	}
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	clientSig := hmacSHA256(stored, authMsg)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	if h := sha256.Sum256(clientKey); string(h[:]) != string(stored) {
		t.Fatalf("StoredKey does not match RFC 7677's client proof")
	}
	if _, err := ScramVerifier("tab\there"); err == nil {
		t.Fatal("a non-printable password was hashed")
	}
}

func TestStatementsQuoteEverything(t *testing.T) {
	v, _ := ScramVerifier("pw-abcdefgh")
	s, err := alterPasswordSQL("app_clone", v, true)
	if err != nil {
		t.Fatal(err)
	}
	if s != `ALTER ROLE "app_clone" WITH PASSWORD '`+v+`' VALID UNTIL 'infinity'` {
		t.Fatalf("unexpected statement %s", s)
	}
	if _, err := alterPasswordSQL(`x"; DROP ROLE y; --`, v, false); err == nil {
		t.Fatal("hostile role name accepted")
	}
	if _, err := alterPasswordSQL("app", "plaintext-password", false); err == nil {
		t.Fatal("a plaintext password reached the statement builder")
	}
	if _, err := alterPasswordSQL("app", v+"'; DROP ROLE y; --", false); err == nil {
		t.Fatal("a tampered verifier was accepted")
	}
	if q, _ := quoteLiteral("a'b"); q != "'a''b'" {
		t.Fatalf("quoteLiteral: %s", q)
	}
	if _, err := quoteLiteral(`a\'`); err == nil {
		t.Fatal("backslash accepted")
	}
	e, err := expireSQL("app", time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)))
	if err != nil || e != `ALTER ROLE "app" VALID UNTIL '2030-01-02T02:04:05Z'` {
		t.Fatalf("expireSQL: %s %v", e, err)
	}
	c, err := createCloneSQL("app_clone", "app", v)
	if err != nil || !strings.HasPrefix(c, `CREATE ROLE "app_clone" WITH LOGIN PASSWORD 'SCRAM-SHA-256$`) || !strings.HasSuffix(c, `IN ROLE "app"`) {
		t.Fatalf("createCloneSQL: %s %v", c, err)
	}
}

func TestConnectErrorsAreClassified(t *testing.T) {
	cases := []struct {
		err   error
		class rotation.Class
		hint  string
	}{
		{&pgconn.PgError{Code: "28P01"}, rotation.ClassAuthentication, "28P01"},
		{&pgconn.PgError{Code: "28000"}, rotation.ClassAuthentication, "28000"},
		{&pgconn.PgError{Code: "3D000"}, rotation.ClassConfiguration, "dbname"},
		{&pgconn.PgError{Code: "42501"}, rotation.ClassPermission, "CONNECT"},
		{&pgconn.PgError{Code: "53300"}, rotation.ClassDependency, "retried"},
		{errors.New(`authentication method requirement "scram-sha-256" failed: server requested password authentication`), rotation.ClassAuthentication, "SCRAM"},
	}
	for _, c := range cases {
		err := classifyConnect(c.err, "the AWSCURRENT user app", "h:5432/d")
		if rotation.ClassOf(err) != c.class || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%v: got %s %q", c.err, rotation.ClassOf(err), err)
		}
	}
	if err := classifyExec(&pgconn.PgError{Code: "42501"}, "setting the password", "admin"); rotation.ClassOf(err) != rotation.ClassPermission || !strings.Contains(err.Error(), "CREATEROLE") {
		t.Errorf("42501 on exec: %v", err)
	}
}

func TestPlaintextNeedsAnExplicitOptIn(t *testing.T) {
	sec, _ := ParseSecret("x", []byte(`{"host":"h","username":"app","password":"pw-123456","sslmode":"disable"}`))
	if _, err := mustNew(t, Config{Password: testPolicy}).endpointFor(sec); rotation.ClassOf(err) != rotation.ClassConfiguration {
		t.Fatalf("plaintext without opt-in: %v", err)
	}
	ep, err := mustNew(t, Config{Password: testPolicy, AllowPlaintext: true}).endpointFor(sec)
	if err != nil || ep.tls != nil || ep.warning == "" {
		t.Fatalf("plaintext with opt-in: tls=%v warning=%q err=%v", ep.tls, ep.warning, err)
	}
	full, _ := ParseSecret("x", []byte(`{"host":"db.internal","username":"app","password":"pw-123456","sslservername":"db.example.com"}`))
	ep, err = mustNew(t, Config{Password: testPolicy}).endpointFor(full)
	if err != nil || ep.tls == nil || ep.tls.InsecureSkipVerify || ep.tls.ServerName != "db.example.com" || ep.warning != "" {
		t.Fatalf("verify-full: %+v %v", ep, err)
	}
	cfg, err := connConfig(ep, "app", "pw-123456", requireAuthApp)
	if err != nil || cfg.Fallbacks != nil || cfg.TLSConfig == nil || cfg.Password != "pw-123456" {
		t.Fatalf("connConfig: fallbacks=%v tls=%v err=%v", cfg.Fallbacks, cfg.TLSConfig, err)
	}
}

func TestVerifierMatchesOnlyItsPassword(t *testing.T) {
	v, err := ScramVerifier("pw-123456")
	if err != nil {
		t.Fatal(err)
	}
	if !VerifierMatches(v, "pw-123456") {
		t.Error("the verifier does not match its own password")
	}
	if VerifierMatches(v, "pw-123457") || VerifierMatches("md5abc", "pw-123456") {
		t.Error("a verifier matches another password or a non-SCRAM string")
	}
}

// TestTheRoleLockKeyNeverChanges: every version of the function must lock a
// role under the same key, or two versions running side by side during a
// deployment would not exclude one another.
func TestTheRoleLockKeyNeverChanges(t *testing.T) {
	if a, b := roleLockKey("app"), roleLockKey("app_clone"); a == b {
		t.Fatalf("two roles share the lock key %d", a)
	}
	if got, want := roleLockKey("app"), int64(-3135660782632956177); got != want {
		t.Fatalf("RoleLockKey(app) = %d, want %d (the key must stay the same across versions)", got, want)
	}
}
