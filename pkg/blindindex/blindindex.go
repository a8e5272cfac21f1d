// Package blindindex owns blind indexes: a keyed hash of a column's
// plaintext, stored beside its envelope ciphertext, so an application can
// find rows by equality (WHERE tax_id_idx = $1) without decrypting the
// column. The index is HMAC-SHA-256 under a key that is not the
// encryption's — it lives in Secrets Manager, apart from the KMS key —
// with the table and column bound in, truncated to a chosen length.
//
// What it leaks (docs/envelope-format.md §12 has the full discussion):
// anyone who can read the table sees which rows of a column hold equal
// values, and therefore the frequency distribution of the column (a value
// held by many rows shows as a large group); whoever holds the index key can
// confirm guesses offline, so low-entropy values (a 10-character tax id with
// a known structure, a 4-digit PIN) are as exposed as the key is. It does not
// link columns or tables (each has its own derived key), does not reveal
// values without the key, and a shorter index (Config.Bytes) trades
// false-positive matches the application must filter for fewer exact
// links. Rotating the index key means recomputing the column's index.
//
// The package computes indexes; it does not store or query them, and does
// not encrypt (pkg/envelope does).
package blindindex

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotation-suite/rotation/pkg/redact"
)

// SecretSource is the part of the Secrets Manager client the key loader
// uses (*secretsmanager.Client).
type SecretSource interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Key is a blind-index key: at least 32 bytes. It redacts itself.
type Key struct {
	b       redact.Bytes
	version string // the secret version it was read from, "" when given directly
}

// NewKey copies a key of at least 32 bytes.
func NewKey(b []byte) (*Key, error) {
	if len(b) < 32 {
		return nil, fmt.Errorf("blindindex: key of %d bytes, want at least 32", len(b))
	}
	return &Key{b: append([]byte(nil), b...)}, nil
}

// KeyFromSecret reads the key from the AWSCURRENT version of a Secrets
// Manager secret whose SecretString is the key in base64 (standard or URL
// alphabet, padding optional): head -c 32 /dev/urandom | base64.
func KeyFromSecret(ctx context.Context, sm SecretSource, secretID string) (*Key, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return nil, fmt.Errorf("blindindex: read the index key from %s: %w", secretID, err)
	}
	s := strings.TrimSpace(aws.ToString(out.SecretString))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			defer clear(b)
			k, err := NewKey(b)
			if err != nil {
				return nil, fmt.Errorf("blindindex: secret %s: %w", secretID, err)
			}
			k.version = aws.ToString(out.VersionId)
			return k, nil
		}
	}
	return nil, fmt.Errorf("blindindex: secret %s does not hold a base64 key", secretID)
}

// Version returns the secret version the key was read from.
func (k *Key) Version() string { return k.version }

func (k *Key) String() string       { return "blindindex.Key{[REDACTED]}" }
func (k *Key) GoString() string     { return k.String() }
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Format redacts for every verb; its receiver is a Key, so that a copy (*k)
// is redacted too.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// Config describes one column's index.
type Config struct {
	Table, Column string
	// Bytes is the index length, 8 to 32 (default 16: 128 bits, no false
	// matches in practice). Shorter indexes collide on purpose.
	Bytes int
	// Normalize, if set, maps a value to its canonical form before hashing
	// (say strings.ToUpper and removing spaces for an IBAN), so equal values
	// written differently match.
	Normalize func([]byte) []byte
}

// Index computes one column's blind index. It is safe for concurrent use
// (if Config.Normalize is). It prints its table and column only.
type Index struct {
	cfg Config
	key redact.Bytes // per-column key derived from the index key
}

const label = "rotation-suite/blind-index v1"

// New derives the column's index key from k: HKDF-SHA-256(k, salt = label,
// info = 2-byte length ‖ table ‖ 2-byte length ‖ column), so no two columns
// share one.
func New(k *Key, cfg Config) (*Index, error) {
	if k == nil || cfg.Table == "" || cfg.Column == "" {
		return nil, errors.New("blindindex: a key, a table and a column are required")
	}
	if cfg.Bytes == 0 {
		cfg.Bytes = 16
	}
	if cfg.Bytes < 8 || cfg.Bytes > 32 {
		return nil, fmt.Errorf("blindindex: index length %d outside 8..32 bytes", cfg.Bytes)
	}
	info := binary.BigEndian.AppendUint16(nil, uint16(len(cfg.Table)))
	info = append(info, cfg.Table...)
	info = binary.BigEndian.AppendUint16(info, uint16(len(cfg.Column)))
	info = append(info, cfg.Column...)
	key, err := hkdf.Key(sha256.New, k.b, []byte(label), string(info), 32)
	if err != nil {
		return nil, err
	}
	return &Index{cfg: cfg, key: key}, nil
}

// Of returns the index of value: unpadded base64url of the first Bytes
// bytes of HMAC-SHA-256(column key, normalized value).
func (x *Index) Of(value []byte) string {
	if x.cfg.Normalize != nil {
		value = x.cfg.Normalize(value)
	}
	m := hmac.New(sha256.New, x.key)
	m.Write(value)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:x.cfg.Bytes])
}

func (x *Index) String() string {
	return "blindindex.Index{" + x.cfg.Table + "." + x.cfg.Column + "}"
}
func (x *Index) GoString() string { return x.String() }

// Format prints the table and column only (the derived key stays out),
// also for a copy (*x).
func (x Index) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(x.String())) }
