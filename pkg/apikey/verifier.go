package apikey

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretSource is the one Secrets Manager call the consumer side needs. The
// SDK's *secretsmanager.Client satisfies it.
type SecretSource interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ReadSecret reads a secret's AWSCURRENT value.
func ReadSecret(ctx context.Context, src SecretSource, secretID string) ([]byte, error) {
	out, err := src.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return nil, err
	}
	if out.SecretString != nil {
		return []byte(*out.SecretString), nil
	}
	return out.SecretBinary, nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Source SecretSource
	// SecretID is the verifier secret (APIKEY_VERIFIER_SECRET_ARN of the
	// rotation function).
	SecretID string
	// PepperSecretID is the pepper secret, required when records use
	// hmac-sha256. It is read once (and again if the fingerprint changes).
	PepperSecretID string
	// Refresh is how old the loaded records may get before a background
	// reload; default 5 minutes. Records older than twice that are reloaded
	// before use (a failed reload keeps them).
	Refresh time.Duration
	// MissRefresh is the least time between two reloads triggered by an
	// unknown key id or an unverified signature (a key newer than the loaded
	// records); default 10 s. Negative disables such reloads.
	MissRefresh time.Duration
	// Skew is how much earlier than notBefore a key is accepted; default DefaultSkew.
	Skew time.Duration
	// Tolerance bounds a webhook signature's timestamp; default DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// LoadTimeout bounds one reload; default 5 s.
	LoadTimeout time.Duration
}

// Verifier verifies API keys or webhook signatures against the verifier
// secret, which it keeps loaded and refreshes: in the background once the
// records are older than Refresh, and synchronously (rate-limited) when a key
// id is unknown, so a key issued after the last load verifies at once. A
// failed reload keeps the records it has. Safe for concurrent use.
type Verifier struct {
	cfg       VerifierConfig
	ring      atomic.Pointer[loaded]
	loadMu    sync.Mutex // one load at a time
	bgRunning atomic.Bool
	lastErr   atomic.Pointer[errBox]
	failedAt  atomic.Int64 // clock (unix ns) of the last failed load
	pepper    []byte
}

type loaded struct {
	ring *Keyring
	at   time.Time
}

type errBox struct{ err error }

// NewVerifier loads the verifier secret once and returns a Verifier; an error
// here means the service cannot verify anything yet.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Source == nil || cfg.SecretID == "" {
		return nil, errors.New("apikey: VerifierConfig needs Source and SecretID")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Minute
	}
	if cfg.MissRefresh == 0 {
		cfg.MissRefresh = 10 * time.Second
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = 5 * time.Second
	}
	v := &Verifier{cfg: cfg}
	if err := v.Reload(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Reload reads the verifier secret (and the pepper if needed) now.
func (v *Verifier) Reload(ctx context.Context) error {
	v.loadMu.Lock()
	defer v.loadMu.Unlock()
	return v.loadRecording(ctx)
}

// loadRecording loads and records the outcome; callers hold loadMu.
func (v *Verifier) loadRecording(ctx context.Context) error {
	err := v.load(ctx)
	if err != nil {
		v.lastErr.Store(&errBox{err})
		v.failedAt.Store(v.cfg.Now().UnixNano())
	} else {
		v.lastErr.Store(nil)
	}
	return err
}

// backingOff reports whether a load failed less than MissRefresh (at least
// a second) ago: a down dependency is not hammered by every request.
func (v *Verifier) backingOff() bool {
	f := v.failedAt.Load()
	wait := max(v.cfg.MissRefresh, time.Second)
	return f != 0 && v.cfg.Now().Sub(time.Unix(0, f)) < wait
}

func (v *Verifier) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.LoadTimeout)
	defer cancel()
	raw, err := ReadSecret(ctx, v.cfg.Source, v.cfg.SecretID)
	if err != nil {
		return fmt.Errorf("apikey: read verifier secret: %w", err)
	}
	doc, err := ParseVerifier(raw)
	if err != nil {
		return err
	}
	needPepper := doc.PepperFingerprint != "" && v.cfg.PepperSecretID != ""
	if needPepper && (v.pepper == nil || PepperFingerprint(v.pepper) != doc.PepperFingerprint) {
		p, err := ReadSecret(ctx, v.cfg.Source, v.cfg.PepperSecretID)
		if err != nil {
			return fmt.Errorf("apikey: read pepper secret: %w", err)
		}
		v.pepper = p
	}
	ring, err := NewKeyring(doc, v.pepper, WithSkew(v.cfg.Skew))
	if err != nil {
		return err
	}
	v.ring.Store(&loaded{ring: ring, at: v.cfg.Now()})
	return nil
}

// LastError returns the error of the last reload, or nil if it succeeded.
func (v *Verifier) LastError() error {
	if b := v.lastErr.Load(); b != nil {
		return b.err
	}
	return nil
}

// current returns the loaded keyring: reloaded first when it is older than
// twice Refresh (a process that slept, a clock jump), reloaded in the
// background when it is older than Refresh.
func (v *Verifier) current(ctx context.Context) *loaded {
	l := v.ring.Load()
	if l == nil {
		return nil
	}
	age := v.cfg.Now().Sub(l.at)
	if age >= 2*v.cfg.Refresh && !v.backingOff() {
		v.loadMu.Lock()
		if v.ring.Load() == l {
			_ = v.loadRecording(ctx)
		}
		v.loadMu.Unlock()
		return v.ring.Load()
	}
	if age >= v.cfg.Refresh && !v.backingOff() && v.bgRunning.CompareAndSwap(false, true) {
		go func() {
			defer v.bgRunning.Store(false)
			_ = v.Reload(context.Background())
		}()
	}
	return l
}

// reloadOnMiss reloads synchronously if the last load is older than
// MissRefresh and reports whether it produced a newer keyring.
func (v *Verifier) reloadOnMiss(ctx context.Context, seen *loaded) bool {
	if v.cfg.MissRefresh < 0 || v.cfg.Now().Sub(seen.at) < v.cfg.MissRefresh || v.backingOff() {
		return false
	}
	v.loadMu.Lock()
	if l := v.ring.Load(); l != seen { // someone else reloaded meanwhile
		v.loadMu.Unlock()
		return true
	}
	err := v.loadRecording(ctx)
	v.loadMu.Unlock()
	return err == nil
}

// Verify checks a presented API key and returns its key id. See Keyring.Verify.
func (v *Verifier) Verify(ctx context.Context, key string) (string, error) {
	l := v.current(ctx)
	if l == nil {
		return "", ErrNoKeyring
	}
	id, err := l.ring.Verify(key, v.cfg.Now())
	if err == ErrUnknownKey && v.reloadOnMiss(ctx, l) {
		id, err = v.ring.Load().ring.Verify(key, v.cfg.Now())
	}
	return id, err
}

// VerifySignature checks a webhook signature header over body and returns
// the id of the key that verified. See Keyring.VerifySignature.
func (v *Verifier) VerifySignature(ctx context.Context, header string, body []byte) (string, error) {
	l := v.current(ctx)
	if l == nil {
		return "", ErrNoKeyring
	}
	id, err := l.ring.VerifySignature(header, body, v.cfg.Now(), v.cfg.Tolerance)
	if err == ErrBadSignature && v.reloadOnMiss(ctx, l) {
		id, err = v.ring.Load().ring.VerifySignature(header, body, v.cfg.Now(), v.cfg.Tolerance)
	}
	return id, err
}
