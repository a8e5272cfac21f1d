package redact_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"

	"github.com/rotation-suite/rotation/pkg/redact"
)

const secret = "hunter2-correct-horse"

// outputs renders v every way the standard library can print it.
func outputs(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out["json"] = string(j)
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog-json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"slog-text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("m", "v", v, slog.Group("g", "v", v))
		out[name] = b.String()
	}
	return out
}

func assertRedacted(t *testing.T, v any, want string) {
	t.Helper()
	for how, s := range outputs(t, v) {
		for _, leak := range []string{secret, hex.EncodeToString([]byte(secret)), base64.StdEncoding.EncodeToString([]byte(secret))[:20]} {
			if strings.Contains(strings.ToLower(s), strings.ToLower(leak)) {
				t.Errorf("%s leaks the secret: %s", how, s)
			}
		}
		if !strings.Contains(s, want) {
			t.Errorf("%s: %q does not show %q", how, s, want)
		}
	}
}

func TestBytesRedactsInEveryOutput(t *testing.T) {
	b := redact.Bytes(secret)
	assertRedacted(t, b, redact.Placeholder)
	assertRedacted(t, &b, redact.Placeholder)
	assertRedacted(t, struct{ V redact.Bytes }{b}, redact.Placeholder)
	assertRedacted(t, []redact.Bytes{b}, redact.Placeholder)
	if string(b.Bytes()) != secret {
		t.Fatal("Bytes does not return the material")
	}
	txt, _ := b.MarshalText()
	if string(txt) != redact.Placeholder {
		t.Fatalf("MarshalText: %s", txt)
	}
}

func TestStringRedactsInEveryOutputAndShowsOnlyItsLabel(t *testing.T) {
	s := redact.NewString(secret)
	assertRedacted(t, s, redact.Placeholder)
	assertRedacted(t, &s, redact.Placeholder)
	l := redact.NewLabelled(secret, `sk_AbC"_`)
	assertRedacted(t, l, "sk_AbC")
	assertRedacted(t, map[string]redact.String{"k": l}, "sk_AbC")
	if l.Reveal() != secret || s.Reveal() != secret || s.IsZero() || !(redact.String{}).IsZero() {
		t.Fatal("Reveal or IsZero is wrong")
	}
	var back string
	j, _ := json.Marshal(l)
	if err := json.Unmarshal(j, &back); err != nil || back != `sk_AbC"_`+redact.Placeholder {
		t.Fatalf("MarshalJSON: %s (%v)", j, err)
	}
	txt, _ := l.MarshalText()
	if string(txt) != l.Redacted() {
		t.Fatalf("MarshalText: %s", txt)
	}
}

// The consumer libraries import this package, so it must stay a leaf of the
// standard library.
func TestThePackageImportsOnlyTheStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/rotation-suite/rotation/pkg/redact").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && d != "github.com/rotation-suite/rotation/pkg/redact" {
			t.Errorf("pkg/redact links %s", d)
		}
	}
}
