package password

import (
	"strings"
	"testing"
)

func TestGeneratedPasswordsFollowThePolicy(t *testing.T) {
	cases := []struct {
		name string
		pol  Policy
	}{
		{"default policy", Policy{Length: 32, Exclude: DefaultExclude}},
		{"no punctuation", Policy{Length: 20, Exclude: DefaultExclude, NoPunctuation: true}},
		{"custom exclude", Policy{Length: 64, Exclude: "abcdefABCDEF012345!#%"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 200 {
				pw, err := c.pol.Generate()
				if err != nil {
					t.Fatal(err)
				}
				if len(pw) != c.pol.Length {
					t.Fatalf("length %d, want %d", len(pw), c.pol.Length)
				}
				if strings.ContainsAny(pw, c.pol.Exclude) {
					t.Fatalf("password contains an excluded character")
				}
				for _, r := range pw {
					if r <= ' ' || r > '~' {
						t.Fatalf("password contains a non-printable or whitespace character %q", r)
					}
				}
				_, classes := c.pol.alphabet()
				for _, cl := range classes {
					if !strings.ContainsAny(pw, cl) {
						t.Fatalf("a required character class is missing")
					}
				}
				if c.pol.NoPunctuation && strings.ContainsAny(pw, puncts) {
					t.Fatal("punctuation in a no-punctuation password")
				}
				if seen[pw] {
					t.Fatal("the generator repeated a password")
				}
				seen[pw] = true
			}
		})
	}
}

func TestDefaultPolicyExcludesConnectionStringBreakers(t *testing.T) {
	all, _ := Policy{Length: 32, Exclude: DefaultExclude}.alphabet()
	for _, c := range `:/@"'\ ` {
		if strings.ContainsRune(all, c) {
			t.Fatalf("default alphabet contains %q", c)
		}
	}
}

// TestExcludeDropsOnlyTheNamedCharacters: as with GetRandomPassword, the
// excluded characters leave the rest of their class in use, and a class all
// of whose characters are excluded is no longer required.
func TestExcludeDropsOnlyTheNamedCharacters(t *testing.T) {
	all, classes := Policy{Length: 16, Exclude: digits + "abc"}.alphabet()
	if strings.ContainsAny(all, digits+"abc") || !strings.Contains(all, "d") {
		t.Fatalf("alphabet %q", all)
	}
	if len(classes) != 3 {
		t.Fatalf("classes %q, want lower, upper and punctuation", classes)
	}
}

func TestPoliciesThatCannotMakeAGoodPasswordAreRefused(t *testing.T) {
	for _, p := range []Policy{
		{Length: MinLength - 1},
		{Length: MaxLength + 1},
		{Length: 32, NoLower: true, NoUpper: true, NoPunctuation: true, Exclude: "0123"},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
		if _, err := p.Generate(); err == nil {
			t.Errorf("%+v generated a password", p)
		}
	}
	if err := (Policy{Length: DefaultLength, Exclude: DefaultExclude}).Validate(); err != nil {
		t.Fatal(err)
	}
}
