package redactcheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/rotation-suite/rotation/functions/dbrotate/pgstrategy"
	"github.com/rotation-suite/rotation/internal/driver"
	"github.com/rotation-suite/rotation/internal/pgfixture"
	"github.com/rotation-suite/rotation/internal/testenv"
	"github.com/rotation-suite/rotation/pkg/apikey"
	"github.com/rotation-suite/rotation/pkg/blindindex"
	"github.com/rotation-suite/rotation/pkg/envelope"
	"github.com/rotation-suite/rotation/pkg/envelope/field"
	"github.com/rotation-suite/rotation/pkg/pgpool"
	"github.com/rotation-suite/rotation/pkg/pgsecret"
	"github.com/rotation-suite/rotation/pkg/redact"
	"github.com/rotation-suite/rotation/pkg/rotation"
	"github.com/rotation-suite/rotation/pkg/secretcache"
)

// secret is the known secret the constructors put in; secret32 is one of
// the 32 bytes a key needs.
const (
	secret   = "Kn0wn-S3cret-qZ7xW4vB9pL2mR8t"
	secret32 = "Kn0wn-32-byte-key-qZ7xW4vB9pL2mR"
)

// A case builds a value of a listed type holding known secrets. make returns
// a pointer to the value and the secrets to look for (raw; their hex,
// base64 and decimal forms are looked for too).
type checkCase struct {
	make func(t *testing.T) (ptr any, secrets []string)
	// jsonCarries, when set, says why the type's JSON encoding may carry the
	// secret (a wire or stored document): JSON is then not checked, but fmt,
	// slog and MarshalText still are.
	jsonCarries string
}

// jsonAllowed is the allow-list for JSON only, each with its reason.
var jsonAllowed = map[string]string{
	"pkg/rotation.Event": "Event's JSON is the wire format of the Lambda invocation; tools build invocations from it, so RotationToken must stay in it",
}

func just(v any) func(*testing.T) (any, []string) {
	return func(*testing.T) (any, []string) { return v, []string{secret} }
}

func version() *rotation.Version {
	return &rotation.Version{ID: "v-1", Stages: []string{rotation.StageCurrent}, Value: rotation.SecretValue(`{"password":"` + secret + `"}`), Created: time.Unix(1700000000, 0)}
}

func redactor() *rotation.Redactor {
	r := rotation.NewRedactor()
	r.Add(secret)
	return r
}

var info = rotation.SecretInfo{ARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf", Name: "app"}

func apiKey(t *testing.T) (apikey.Key, []string) {
	t.Helper()
	k, err := apikey.GenerateKey("sk")
	if err != nil {
		t.Fatal(err)
	}
	p, err := apikey.ParseKey(k.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	// The prefix and key id are public and shown; the rest is the secret.
	return k, []string{k.Reveal(), strings.TrimPrefix(k.Reveal(), p.Prefix+"_"+p.KeyID+"_")}
}

func localKey(t *testing.T) *envelope.LocalKey {
	t.Helper()
	k, err := envelope.NewLocalKey("local-1", []byte(secret32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func blindKey(t *testing.T) *blindindex.Key {
	t.Helper()
	k, err := blindindex.NewKey([]byte(secret32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// table lists every type the scanner finds, keyed as the scanner names them.
var table = map[string]checkCase{
	"pkg/redact.Bytes": {make: func(*testing.T) (any, []string) { b := redact.Bytes(secret); return &b, []string{secret} }},
	"pkg/redact.String": {make: func(*testing.T) (any, []string) {
		s := redact.NewLabelled(secret, "label_")
		return &s, []string{secret}
	}},

	"pkg/rotation.SecretValue": {make: func(*testing.T) (any, []string) { v := rotation.SecretValue(secret); return &v, []string{secret} }},
	"pkg/rotation.Version":     {make: just(version())},
	"pkg/rotation.Event": {make: just(&rotation.Event{Step: rotation.StepSet, SecretID: info.ARN, ClientRequestToken: "v-2", RotationToken: secret}),
		jsonCarries: jsonAllowed["pkg/rotation.Event"]},
	"pkg/rotation.CreateResponse": {make: just(&rotation.CreateResponse{Value: []byte(secret), Report: rotation.Report{Warnings: []string{"w"}}})},
	"pkg/rotation.CreateRequest":  {make: just(&rotation.CreateRequest{Secret: info, Token: "v-2", Current: version(), Redact: redactor(), Now: time.Unix(1700000000, 0)})},
	"pkg/rotation.SetRequest":     {make: just(&rotation.SetRequest{Secret: info, Token: "v-2", Current: version(), Pending: version(), Redact: redactor()})},
	"pkg/rotation.TestRequest":    {make: just(&rotation.TestRequest{Secret: info, Token: "v-2", Current: version(), Pending: version(), ConfigTest: true, Redact: redactor()})},
	"pkg/rotation.FinishRequest":  {make: just(&rotation.FinishRequest{Secret: info, Token: "v-2", Current: version(), Previous: version(), Redact: redactor()})},
	"pkg/rotation.Redactor":       {make: just(redactor())},

	"pkg/envelope.Secret": {make: func(*testing.T) (any, []string) { s := envelope.Secret(secret); return &s, []string{secret} }},
	"pkg/envelope.DataKey": {make: func(*testing.T) (any, []string) {
		return &envelope.DataKey{KeyID: "local-1", Encrypted: []byte("wrapped"), Plaintext: envelope.Secret(secret32)}, []string{secret32}
	}},
	"pkg/envelope.LocalKey": {make: func(t *testing.T) (any, []string) { return localKey(t), []string{secret32} }},
	"pkg/envelope/field.Encrypted": {make: func(t *testing.T) (any, []string) {
		p, err := envelope.NewLocalProvider(localKey(t))
		if err != nil {
			t.Fatal(err)
		}
		env, err := envelope.New(envelope.Config{Provider: p})
		if err != nil {
			t.Fatal(err)
		}
		col, err := env.Column("users", "ssn", nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := field.Seal(context.Background(), col, "row-1", []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Open(context.Background(), col, "row-1"); err != nil || string(v.Plaintext()) != secret {
			t.Fatalf("open: %v", err)
		}
		return &v, []string{secret, secret32}
	}},

	"pkg/apikey.Key": {make: func(t *testing.T) (any, []string) { k, s := apiKey(t); return &k, s }},
	"pkg/apikey.CallerSecret": {make: func(t *testing.T) (any, []string) {
		k, s := apiKey(t)
		p, _ := apikey.ParseKey(k.Reveal())
		return &apikey.CallerSecret{Kind: "apikey", KeyID: p.KeyID, Key: k, CreatedAt: time.Unix(1700000000, 0), ExpiresAt: time.Unix(1800000000, 0)}, s
	}},
	"pkg/apikey.Record": {make: func(t *testing.T) (any, []string) {
		k, s := apiKey(t)
		return &apikey.Record{KeyID: "kid", Prefix: "whsec", Secret: k, Status: "active"}, s
	}},
	"pkg/apikey.VerifierDoc": {make: func(t *testing.T) (any, []string) {
		k, s := apiKey(t)
		return &apikey.VerifierDoc{Kind: "webhook", Records: []apikey.Record{{KeyID: "kid", Secret: k, Status: "active"}}}, s
	}},

	"pkg/blindindex.Key": {make: func(t *testing.T) (any, []string) { return blindKey(t), []string{secret32} }},
	"pkg/blindindex.Index": {make: func(t *testing.T) (any, []string) {
		x, err := blindindex.New(blindKey(t), blindindex.Config{Table: "users", Column: "email"})
		if err != nil {
			t.Fatal(err)
		}
		// The column key, derived as blindindex.New documents.
		info := binary.BigEndian.AppendUint16(nil, 5)
		info = append(info, "users"...)
		info = binary.BigEndian.AppendUint16(info, 5)
		info = append(info, "email"...)
		ck, err := hkdf.Key(sha256.New, []byte(secret32), []byte("rotation-suite/blind-index v1"), string(info), 32)
		if err != nil {
			t.Fatal(err)
		}
		return x, []string{secret32, string(ck)}
	}},

	"pkg/secretcache.Value": {make: just(secretcache.NewValue(info.ARN, "v-1", []byte(secret)))},

	"functions/dbrotate/pgstrategy.Login": {make: just(&pgstrategy.Login{User: "app_user", Password: secret})},
	"functions/dbrotate/pgstrategy.Secret": {make: func(t *testing.T) (any, []string) {
		s, err := pgstrategy.ParseSecret("application", []byte(`{"engine":"postgres","host":"db.example","port":5432,"username":"app_user","password":"`+secret+`","extra":"`+secret+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		return s, []string{secret}
	}},

	"pkg/pgsecret.Secret": {make: func(t *testing.T) (any, []string) {
		s, err := pgsecret.Parse("application", []byte(`{"engine":"postgres","host":"db.example","port":5432,"username":"app_user","password":"`+secret+`","extra":"`+secret+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		return s, []string{secret}
	}},

	"pkg/envelope.LocalProvider": {make: func(t *testing.T) (any, []string) {
		p, err := envelope.NewLocalProvider(localKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return p, []string{secret32}
	}},
	"pkg/apikey.Keyring": {make: func(t *testing.T) (any, []string) {
		k, s := apiKey(t)
		p, _ := apikey.ParseKey(k.Reveal())
		c := &apikey.CallerSecret{Kind: apikey.KindWebhook, KeyID: p.KeyID, Key: k, CreatedAt: time.Unix(1700000000, 0), ExpiresAt: time.Unix(1800000000, 0)}
		r, err := apikey.NewRecord(c, "", nil, apikey.StatusActive)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := apikey.NewKeyring(&apikey.VerifierDoc{Kind: apikey.KindWebhook, Records: []apikey.Record{r}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ring, s
	}},
	"pkg/pgpool.Pool": {make: func(t *testing.T) (any, []string) {
		p := &pgpool.Pool{}
		setField(t, p, "overrides", map[string]*secretcache.Value{"v-0": secretcache.NewValue(info.ARN, "v-1", []byte(secret))})
		return p, []string{secret}
	}},
	"internal/pgfixture.Fleet": {make: func(t *testing.T) (any, []string) {
		f := &pgfixture.Fleet{Prefix: "scale", SecretARNs: []string{info.ARN}}
		setField(t, f, "pg", &testenv.Postgres{Host: "127.0.0.1", SuperUser: "postgres", SuperPassword: secret})
		return f, []string{secret}
	}},
	"internal/testenv.CA": {make: func(t *testing.T) (any, []string) {
		ca, err := testenv.NewCA("redactcheck")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := getField(t, ca, "key").(*ecdsa.PrivateKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		d := new(big.Int).SetBytes(raw)
		return ca, []string{string(raw), d.String(), strings.Trim(fmt.Sprint(d.Bits()), "[]")}
	}},
	"internal/driver.Driver":    {make: just(&driver.Driver{LambdaARN: "arn:aws:lambda:eu-west-1:123456789012:function:f", Attempts: 1, RotationToken: secret})},
	"internal/testenv.Postgres": {make: just(&testenv.Postgres{Host: "127.0.0.1", Port: 5432, SuperUser: "postgres", SuperPassword: secret})},
	"internal/testenv.Stack":    {make: just(&testenv.Stack{Postgres: &testenv.Postgres{Host: "127.0.0.1", Port: 5432, SuperUser: "postgres", SuperPassword: secret}})},
}

// TestEveryTypeThatCanHoldASecretIsChecked is the guard: a new exported type
// that can hold a secret (see the rule in scan_test.go) fails here until it
// is in the table, and so is checked by TestNoListedTypeShowsItsSecret.
func TestEveryTypeThatCanHoldASecretIsChecked(t *testing.T) {
	found := scan(t).found()
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%s: %s", n, found[n])
		if _, ok := table[n]; !ok {
			t.Errorf("%s can hold a secret (%s) but is not in the table of internal/redactcheck/redactcheck_test.go.\n"+
				"Add an entry %q whose make returns a pointer to a value filled with the known secret and the secrets to look for;\n"+
				"if it then shows the secret, hold the secret in an exported redact.Bytes or redact.String field, or give the type a Format (and LogValue or MarshalJSON where slog or JSON reach the secret) that leaves it out.",
				n, found[n], n)
		}
	}
	for n := range table {
		if _, ok := found[n]; !ok {
			t.Errorf("%s is in the table but the scanner does not find it: remove the entry, or fix the scanner if the type still holds a secret", n)
		}
	}
	if !t.Failed() {
		t.Logf("%d types can hold a secret; all are in the table", len(names))
	}
}

func TestNoListedTypeShowsItsSecret(t *testing.T) {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	checked, values := 0, 0
	for _, n := range names {
		c := table[n]
		t.Run(strings.ReplaceAll(n, "/", "_"), func(t *testing.T) {
			ptr, secrets := c.make(t)
			if reflect.TypeOf(ptr).Kind() != reflect.Pointer {
				t.Fatalf("make returns %T, want a pointer", ptr)
			}
			if got := typeName(reflect.TypeOf(ptr).Elem()); got != n && !aliasOf(n, got) {
				t.Fatalf("make returns *%s, want *%s", got, n)
			}
			needles := leakForms(secrets)
			forms := []struct {
				how string
				v   any
			}{{"pointer", ptr}}
			// A type holding a lock is never copied (vet's copylocks check
			// refuses it), so only its pointer is printed.
			if !holdsLock(reflect.TypeOf(ptr).Elem()) {
				forms = append(forms, struct {
					how string
					v   any
				}{"value", reflect.ValueOf(ptr).Elem().Interface()})
				values++
			}
			for _, v := range forms {
				for how, out := range render(t, v.v, c.jsonCarries != "") {
					for _, nd := range needles {
						if strings.Contains(strings.ToLower(out), strings.ToLower(nd.text)) {
							t.Errorf("%s as a %s shows the secret (%s) in %s: %s", n, v.how, nd.form, how, out)
						}
					}
				}
			}
			checked++
		})
	}
	t.Logf("%d types checked as a pointer, %d of them as a value too (the others hold a lock)", checked, values)
}

// aliasOf reports whether listed name n is an alias of type got (reflect
// names an alias by its target): rotation.SecretValue and envelope.Secret
// are redact.Bytes, apikey.Key is redact.String.
func aliasOf(n, got string) bool {
	switch n {
	case "pkg/rotation.SecretValue", "pkg/envelope.Secret":
		return got == "pkg/redact.Bytes"
	case "pkg/apikey.Key":
		return got == "pkg/redact.String"
	}
	return false
}

func typeName(t reflect.Type) string {
	return strings.TrimPrefix(t.PkgPath(), module+"/") + "." + t.Name()
}

type needle struct{ form, text string }

// leakForms are the forms a secret can take in printed output: raw, hex,
// base64 (standard and URL alphabets, at every alignment inside a longer
// value: the characters a neighbour can change are cut off) and fmt's
// decimal rendering of bytes.
func leakForms(secrets []string) []needle {
	var out []needle
	for _, s := range secrets {
		out = append(out, needle{"raw", s}, needle{"hex", hex.EncodeToString([]byte(s))})
		for shift := range 3 {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				e := enc.EncodeToString(append(bytes.Repeat([]byte{0}, shift), s...))
				if len(e) > 12 {
					out = append(out, needle{"base64", e[4 : len(e)-4]})
				}
			}
		}
		out = append(out, needle{"decimal bytes", strings.Trim(fmt.Sprint([]byte(s)), "[]")})
	}
	return out
}

// render prints v every way the standard library can: fmt verbs, slog's
// JSON and text handlers (as an attribute and inside a group),
// encoding/json (unless skipJSON) and MarshalText where v has it.
func render(t *testing.T, v any, skipJSON bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("msg", "v", v, slog.Group("g", slog.Any("v", v)))
		out[name] = b.String()
	}
	if !skipJSON {
		j, err := json.Marshal(v)
		if err != nil {
			out["json error"] = err.Error()
		} else {
			out["json"] = string(j)
		}
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(map[string]any{"nested": v}); err == nil {
			out["json nested"] = b.String()
		}
	}
	if m, ok := v.(encoding.TextMarshaler); ok {
		txt, err := m.MarshalText()
		out["MarshalText"] = string(txt)
		if err != nil {
			out["MarshalText error"] = err.Error()
		}
	}
	return out
}

// holdsLock reports whether t holds, by value, a type from sync or
// sync/atomic (a Mutex, a Once, an atomic.Int64: types vet forbids copying).
func holdsLock(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct:
		if p := t.PkgPath(); p == "sync" || p == "sync/atomic" {
			return true
		}
		for i := range t.NumField() {
			if holdsLock(t.Field(i).Type) {
				return true
			}
		}
	case reflect.Array:
		return holdsLock(t.Elem())
	}
	return false
}

// setField plants v in the (unexported) field name of the struct ptr points
// to: the way to put a known secret where only the package's own code
// writes one.
func setField(t *testing.T, ptr any, name string, v any) {
	t.Helper()
	f := reflect.ValueOf(ptr).Elem().FieldByName(name)
	if !f.IsValid() {
		t.Fatalf("%T has no field %s", ptr, name)
	}
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(v))
}

// getField reads the (unexported) field name of the struct ptr points to.
func getField(t *testing.T, ptr any, name string) any {
	t.Helper()
	f := reflect.ValueOf(ptr).Elem().FieldByName(name)
	if !f.IsValid() {
		t.Fatalf("%T has no field %s", ptr, name)
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface()
}
