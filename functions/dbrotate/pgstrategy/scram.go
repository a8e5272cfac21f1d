package pgstrategy

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SCRAM parameters PostgreSQL itself uses when it hashes a password
// (SCRAM_SHA_256_DEFAULT_ITERATIONS, SCRAM_DEFAULT_SALT_LEN).
const (
	ScramIterations = 4096
	scramSaltLen    = 16
)

// ScramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (RFC 5802 / RFC 7677), with a fresh random salt:
//
//	SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
//
// Setting this string with ALTER ROLE … PASSWORD makes the server store it as
// is, so the password itself never travels to the server or into its logs.
// The password must be SASLprep-stable; the generator only produces printable
// ASCII, for which SASLprep is the identity.
func ScramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramVerifierWithSalt(password, salt, ScramIterations)
}

func scramVerifierWithSalt(password string, salt []byte, iter int) (string, error) {
	for i := 0; i < len(password); i++ {
		if password[i] < 0x21 || password[i] > 0x7e {
			return "", fmt.Errorf("the password contains a character outside printable ASCII")
		}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// verifierPattern is the exact shape of a verifier this package produces;
// anything else never reaches SQL.
var verifierPattern = regexp.MustCompile(`^SCRAM-SHA-256\$[0-9]{4,7}:[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*:[A-Za-z0-9+/]+=*$`)

// VerifierMatches reports whether password is the password of verifier (a
// SCRAM-SHA-256 verifier of the shape ScramVerifier produces): what a server
// checks at login. An in-memory DB uses it to authenticate.
func VerifierMatches(verifier, password string) bool {
	if !verifierPattern.MatchString(verifier) {
		return false
	}
	head, _, _ := strings.Cut(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	its, salt64, ok := strings.Cut(head, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(its)
	if err != nil {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return false
	}
	want, err := scramVerifierWithSalt(password, salt, iter)
	return err == nil && hmac.Equal([]byte(want), []byte(verifier))
}
