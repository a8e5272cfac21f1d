package pgstrategy

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxIdentLen is PostgreSQL's NAMEDATALEN-1: longer names are truncated by
// the server, so two different names could address the same role.
const maxIdentLen = 63

// cloneSuffix names the second role of the clone-style pair, as AWS's
// alternating-users template does.
const cloneSuffix = "_clone"

var roleNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// reservedRoles are names PostgreSQL reserves or treats specially in ALTER ROLE.
var reservedRoles = map[string]bool{
	"public": true, "none": true, "current_user": true, "session_user": true,
	"current_role": true, "all": true,
}

// ValidateRoleName accepts the login role names this function manages:
// 1–63 bytes of ASCII letters, digits, '_' and '$', not starting with a digit
// or '$', not a reserved name, not in the pg_ namespace. The name is still
// quoted wherever it appears in SQL; the check exists so that a hostile
// value (quotes, semicolons, comments) is refused with a clear message
// before anything is done.
func ValidateRoleName(field, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", field)
	case len(name) > maxIdentLen:
		return fmt.Errorf("%s is %d bytes long; PostgreSQL role names have at most %d", field, len(name), maxIdentLen)
	case !roleNamePattern.MatchString(name):
		return fmt.Errorf("%s \"%s\" may contain only ASCII letters, digits, '_' and '$' and must start with a letter or '_'", field, printable(name))
	case reservedRoles[strings.ToLower(name)]:
		return fmt.Errorf("%s %q is a reserved role name", field, name)
	case strings.HasPrefix(strings.ToLower(name), "pg_"):
		return fmt.Errorf("%s %q is in the reserved pg_ namespace", field, name)
	}
	return nil
}

// printable returns s with control characters escaped and cut to 80 bytes,
// for error messages about hostile input.
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}

// quoteIdent quotes a role name with pgx's identifier sanitizer.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteLiteral quotes s as a standard SQL string literal. Only values of a
// known, validated shape (SCRAM verifiers, timestamps) are ever quoted;
// a quote is doubled, and a backslash or NUL is refused outright so the
// literal means the same whatever standard_conforming_strings says.
func quoteLiteral(s string) (string, error) {
	if strings.ContainsAny(s, "\\\x00") {
		return "", fmt.Errorf("refusing to quote a literal containing a backslash or NUL")
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// verifierLiteral quotes a SCRAM verifier as a literal, after checking it
// has the exact shape ScramVerifier produces (never a plaintext password).
func verifierLiteral(verifier string) (string, error) {
	if !verifierPattern.MatchString(verifier) {
		return "", fmt.Errorf("internal error: the password verifier has an unexpected shape")
	}
	return quoteLiteral(verifier)
}

// alterPasswordSQL sets role's password to a precomputed SCRAM verifier.
// Utility statements take no bind parameters, so the verifier is a literal;
// it is checked against the exact verifier shape first.
func alterPasswordSQL(role, verifier string, validInfinity bool) (string, error) {
	if err := ValidateRoleName("role", role); err != nil {
		return "", err
	}
	lit, err := verifierLiteral(verifier)
	if err != nil {
		return "", err
	}
	s := "ALTER ROLE " + quoteIdent(role) + " WITH PASSWORD " + lit
	if validInfinity {
		s += " VALID UNTIL 'infinity'"
	}
	return s, nil
}

// createCloneSQL creates the clone login role with the verifier as its
// password and membership of the original role (AWS's clone layout).
func createCloneSQL(clone, original, verifier string) (string, error) {
	if err := ValidateRoleName("clone role", clone); err != nil {
		return "", err
	}
	if err := ValidateRoleName("original role", original); err != nil {
		return "", err
	}
	lit, err := verifierLiteral(verifier)
	if err != nil {
		return "", err
	}
	return "CREATE ROLE " + quoteIdent(clone) + " WITH LOGIN PASSWORD " + lit +
		" VALID UNTIL 'infinity' IN ROLE " + quoteIdent(original), nil
}

// expireSQL makes role's password stop working for new logins at until.
// ALTER ROLE … VALID UNTIL takes a literal, so the time is formatted here in
// UTC (RFC 3339, which PostgreSQL's timestamptz input accepts).
func expireSQL(role string, until time.Time) (string, error) {
	if err := ValidateRoleName("role", role); err != nil {
		return "", err
	}
	lit, err := quoteLiteral(until.UTC().Format(time.RFC3339))
	if err != nil {
		return "", err
	}
	return "ALTER ROLE " + quoteIdent(role) + " VALID UNTIL " + lit, nil
}

// roleLockKey is the advisory-lock key of role: the first 8 bytes of
// SHA-256("pgrotate role lock\x00" + role), as a signed 64-bit integer. It
// is computed here, not with the server's hashtext, so that it never
// changes between PostgreSQL versions; the prefix keeps it apart from keys
// an application derives from the same name. The prefix carries the
// package's former name and must stay as it is: a deployed version that
// locked under another key would not exclude this one.
func roleLockKey(role string) int64 {
	h := sha256.Sum256([]byte("pgrotate role lock\x00" + role))
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// lockRoleSQL opens a transaction that waits at most wait for role's
// advisory lock and then holds it until the transaction ends. One round
// trip with the simple protocol.
func lockRoleSQL(role string, wait time.Duration) (string, error) {
	if err := ValidateRoleName("role", role); err != nil {
		return "", err
	}
	return fmt.Sprintf("BEGIN; SET LOCAL lock_timeout = %d; SELECT pg_catalog.pg_advisory_xact_lock(%d)",
		max(wait.Milliseconds(), 1), roleLockKey(role)), nil
}
