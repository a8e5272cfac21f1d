// Package password generates the random passwords the rotation functions set:
// a policy (length, characters to exclude, character classes to drop) with
// the semantics of Secrets Manager's GetRandomPassword, and a generator that
// draws from crypto/rand. It owns nothing about where a password goes: which
// policy a function uses, the environment variables that set it, and how the
// password is stored or hashed belong to the function's strategy package.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DefaultExclude is the default EXCLUDE_CHARACTERS of AWS's database
// rotation templates: characters that break connection strings and shell
// quoting. Whitespace and control characters are never generated.
const DefaultExclude = `:/@"'\`

// Length bounds. Below 16 random printable characters a generated password
// is weaker than it should be, and above 1024 it buys nothing.
const (
	DefaultLength = 32
	MinLength     = 16
	MaxLength     = 1024
)

// Policy says which passwords Generate produces.
type Policy struct {
	Length int
	// Exclude lists characters never used, as GetRandomPassword's
	// ExcludeCharacters: it replaces nothing else and adds to the classes
	// dropped below.
	Exclude string
	// Drop whole classes, like GetRandomPassword's ExcludeLowercase,
	// ExcludeUppercase, ExcludeNumbers and ExcludePunctuation.
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
func (p Policy) alphabet() (all string, classes []string) {
	var b strings.Builder
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
			b.WriteString(kept.String())
		}
	}
	return b.String(), classes
}

// Validate reports a policy that cannot produce a good password: a length
// outside MinLength…MaxLength, fewer than 10 usable characters, or fewer
// characters than classes that must each appear.
func (p Policy) Validate() error {
	if p.Length < MinLength || p.Length > MaxLength {
		return fmt.Errorf("the password length is %d; it must be between %d and %d", p.Length, MinLength, MaxLength)
	}
	all, classes := p.alphabet()
	if len(all) < 10 {
		return fmt.Errorf("the password policy leaves only %d usable characters; exclude fewer characters", len(all))
	}
	if len(classes) > p.Length {
		return errors.New("the password length is shorter than the number of character classes required")
	}
	return nil
}

// Generate returns a password from crypto/rand that follows the policy:
// every character drawn uniformly from the allowed alphabet, redrawn until
// every allowed class appears.
func (p Policy) Generate() (string, error) {
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
