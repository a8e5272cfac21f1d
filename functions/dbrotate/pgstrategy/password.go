package pgstrategy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DefaultExclude is the default EXCLUDE_CHARACTERS of AWS's PostgreSQL
// templates: characters that break connection strings and shell quoting.
// Whitespace and control characters are never generated.
const DefaultExclude = `:/@"'\`

// Password length bounds. PostgreSQL accepts far longer passwords; below 16
// random printable characters a generated password is weaker than it should
// be, and above 1024 it buys nothing.
const (
	DefaultPasswordLength = 32
	MinPasswordLength     = 16
	MaxPasswordLength     = 1024
)

// PasswordPolicy says which passwords Generate produces.
type PasswordPolicy struct {
	Length  int
	Exclude string // characters never used
	// Exclude whole classes, like GetRandomPassword's flags.
	NoLower, NoUpper, NoDigits, NoPunctuation bool
}

// classes of printable ASCII, in the order GetRandomPassword names them.
const (
	lowers = "abcdefghijklmnopqrstuvwxyz"
	uppers = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits = "0123456789"
	puncts = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// alphabet returns the characters the policy allows, and the classes that
// still have at least one character (each must appear in a password, as
// GetRandomPassword's RequireEachIncludedType does).
func (p PasswordPolicy) alphabet() (string, []string) {
	var all strings.Builder
	var classes []string
	for _, c := range []struct {
		set  string
		skip bool
	}{{lowers, p.NoLower}, {uppers, p.NoUpper}, {digits, p.NoDigits}, {puncts, p.NoPunctuation}} {
		if c.skip {
			continue
		}
		var kept strings.Builder
		for _, r := range c.set {
			if !strings.ContainsRune(p.Exclude, r) {
				kept.WriteRune(r)
			}
		}
		if kept.Len() > 0 {
			classes = append(classes, kept.String())
			all.WriteString(kept.String())
		}
	}
	return all.String(), classes
}

// Validate reports a policy that cannot produce a good password.
func (p PasswordPolicy) Validate() error {
	if p.Length < MinPasswordLength || p.Length > MaxPasswordLength {
		return fmt.Errorf("PASSWORD_LENGTH is %d; it must be between %d and %d", p.Length, MinPasswordLength, MaxPasswordLength)
	}
	all, classes := p.alphabet()
	if len(all) < 10 {
		return fmt.Errorf("the password policy leaves only %d usable characters; exclude fewer characters", len(all))
	}
	if len(classes) > p.Length {
		return errors.New("PASSWORD_LENGTH is shorter than the number of character classes required")
	}
	return nil
}

// Generate returns a password from crypto/rand that follows the policy:
// every character drawn uniformly from the allowed alphabet, redrawn until
// every allowed class appears.
func (p PasswordPolicy) Generate() (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	all, classes := p.alphabet()
	n := big.NewInt(int64(len(all)))
	buf := make([]byte, p.Length)
	for {
		for i := range buf {
			k, err := rand.Int(rand.Reader, n)
			if err != nil {
				return "", err
			}
			buf[i] = all[k.Int64()]
		}
		ok := true
		for _, c := range classes {
			if !strings.ContainsAny(string(buf), c) {
				ok = false
				break
			}
		}
		if ok {
			return string(buf), nil
		}
	}
}
