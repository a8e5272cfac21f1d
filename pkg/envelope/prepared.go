package envelope

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
)

// PreparedContext is a stable encryption context prepared once — checked,
// canonically encoded, its cache key computed — for use with many messages
// (AppendEncryptWith, AppendDecryptWith, Column). The stable context is what
// the key provider binds the data key to (KMS's EncryptionContext); with a
// data-key cache, every format-2 message under one PreparedContext shares a
// data key within the cache's limits (format 1 binds the message context to
// the data key too, so there messages share one only when their message
// contexts are equal). It is immutable and safe for concurrent use.
// Context values are not secret; it prints its keys only.
type PreparedContext struct {
	stable Context // a private copy: the provider receives it
	canon  []byte  // canonical encoding
	encKey []byte  // cache key of format-2 encryption entries: 'e' 2 canon
}

// PrepareContext checks and encodes the stable context ec (copied).
func PrepareContext(ec Context) (*PreparedContext, error) {
	canon, err := ec.appendCanonical("prepare-context", nil)
	if err != nil {
		return nil, err
	}
	return &PreparedContext{
		stable: maps.Clone(ec),
		canon:  canon,
		encKey: append([]byte{'e', Version2}, canon...),
	}, nil
}

// Context returns a copy of the stable context.
func (pc *PreparedContext) Context() Context { return maps.Clone(pc.stable) }

func (pc *PreparedContext) String() string {
	keys := slices.Sorted(maps.Keys(pc.stable))
	for i, k := range keys {
		keys[i] = safeKey(k)
	}
	return "envelope.PreparedContext{keys:" + strings.Join(keys, ",") + "}"
}

// GoString prints the keys only, like String.
func (pc *PreparedContext) GoString() string { return pc.String() }

// LogValue logs the keys only.
func (pc *PreparedContext) LogValue() slog.Value { return slog.StringValue(pc.String()) }

// merged returns the stable and message context as one Context, the
// single context of format 1, after checking that they share no key.
func (pc *PreparedContext) merged(op string, msg Context) (Context, error) {
	if len(msg) == 0 {
		return pc.stable, nil
	}
	for k := range msg {
		if _, ok := pc.stable[k]; ok {
			return nil, newErr(ErrMalformed, op, "context key %q is in both the stable and the message context", safeKey(k))
		}
	}
	m := maps.Clone(pc.stable)
	if m == nil {
		m = Context{}
	}
	maps.Copy(m, msg)
	return m, nil
}

// AppendEncryptWith encrypts plaintext under the stable context pc and the
// message context msg and appends the blob to dst (the aliasing rules of
// AppendEncrypt apply). Only pc goes to the key provider; msg — a row id,
// say — is authenticated with the body (format 2), so one cached data key
// serves every message with the same stable context, and Decrypt needs the
// same msg. A key may not be in both contexts. An Envelope that writes
// format 1 (Config.WriteVersion) binds the union of both to the data key,
// as format 1 has one context.
func (e *Envelope) AppendEncryptWith(ctx context.Context, dst, plaintext []byte, pc *PreparedContext, msg Context) ([]byte, error) {
	if pc == nil {
		return nil, newErr(ErrMalformed, "encrypt", "nil PreparedContext")
	}
	if e.version == Version1 {
		ec, err := pc.merged("encrypt", msg)
		if err != nil {
			return nil, err
		}
		return e.appendEncrypt1(ctx, dst, plaintext, ec)
	}
	s := getScratch()
	defer putScratch(s)
	mc, err := msg.appendCanonical("encrypt", s.mbuf[:0])
	if err != nil {
		return nil, err
	}
	return e.encrypt2(ctx, dst, plaintext, pc.stable, pc.canon, pc.encKey, mc)
}

// AppendDecryptWith decrypts a blob made with the stable context pc and the
// message context msg and appends the plaintext to dst (the aliasing rules
// of AppendDecrypt apply). A format-1 blob is checked against the union of
// both contexts.
func (e *Envelope) AppendDecryptWith(ctx context.Context, dst, blob []byte, pc *PreparedContext, msg Context) (Secret, error) {
	if pc == nil {
		return nil, newErr(ErrMalformed, "decrypt", "nil PreparedContext")
	}
	if len(blob) > 0 && blob[0] == Version1 {
		ec, err := pc.merged("decrypt", msg)
		if err != nil {
			return nil, err
		}
		return e.appendDecrypt1(ctx, dst, blob, ec)
	}
	s := getScratch()
	defer putScratch(s)
	mc, err := msg.appendCanonical("decrypt", s.mbuf[:0])
	if err != nil {
		return nil, err
	}
	return e.decrypt2(ctx, dst, blob, pc.stable, pc.canon, msg, mc, s)
}

// encrypt2 writes one format-2 blob. stable is the stable context (for the
// provider), canon its encoding, encKey its cache key, mc the canonical
// message context.
func (e *Envelope) encrypt2(ctx context.Context, dst, plaintext []byte, stable Context, canon, encKey, mc []byte) ([]byte, error) {
	return e.encrypt2m(ctx, dst, plaintext, stable, canon, encKey, mc, nil)
}

// encrypt2m is encrypt2 with memo, the entry the caller used last (a
// Column's): when it is still usable, the cache's map is not consulted.
func (e *Envelope) encrypt2m(ctx context.Context, dst, plaintext []byte, stable Context, canon, encKey, mc []byte, memo *atomic.Pointer[cacheEntry]) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, newErr(ErrMalformed, "encrypt", "plaintext of %d bytes exceeds the %d-byte maximum", len(plaintext), MaxPlaintext)
	}
	if !disjoint(canon, mc) {
		return nil, newErr(ErrMalformed, "encrypt", "a context key is in both the stable and the message context")
	}
	var (
		m   *keyMaterial
		ent *cacheEntry
		seq int64
		err error
	)
	if e.cache != nil && int64(len(plaintext)) <= e.cache.cfg.MaxBytes {
		size := int64(len(plaintext))
		if memo != nil {
			if ent = memo.Load(); ent != nil {
				var ok bool
				if seq, ok = e.cache.reuse(ent, size, true); !ok {
					ent = nil
				}
			}
		}
		if ent == nil {
			if ent, seq = e.cache.lookup(encKey, size, true); ent == nil {
				ent, seq, err = e.cache.get(ctx, string(encKey), size, true, func(ctx context.Context) (*keyMaterial, error) {
					return e.generate2(ctx, stable, canon)
				})
			}
			if ent != nil && memo != nil {
				memo.Store(ent)
			}
		}
		if ent != nil {
			m = ent.m
		}
	} else {
		m, err = e.generate2(ctx, stable, canon) // a fresh data key: its first message, sequence number 0
	}
	if err != nil {
		return nil, err
	}
	defer e.done(m, ent)
	return seal2(dst, m, e.p.ID(), canon, mc, seq, plaintext), nil
}

// generate2 asks the provider for a data key and derives its format-2 keys.
// Only the one cache entry (or the one message) it is generated for
// encrypts under it, so its nonce counter lives there; keys unwrapped for
// decryption are never used to encrypt.
func (e *Envelope) generate2(ctx context.Context, stable Context, canon []byte) (*keyMaterial, error) {
	dk, err := generateDataKey(ctx, e.p, stable)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	return newKeyMaterial2(dk.Plaintext, e.p.ID(), bytes.Clone(canon), dk.KeyID, bytes.Clone(dk.Encrypted))
}

// check2 parses a format-2 blob and checks both contexts, the provider and
// the key allow-list: everything that needs no key.
func (e *Envelope) check2(op string, blob []byte, canon []byte, stable Context, msg Context, mc []byte, l *layout2) error {
	if err := parse2(blob, l, canon, mc); err != nil {
		err.(*Error).Op = op
		return err
	}
	if !bytes.Equal(l.stable, canon) {
		return newErr(ErrContextMismatch, op, "stable context: %s", contextDiff(l.stable, stable))
	}
	if !bytes.Equal(l.message, mc) {
		if msg == nil {
			msg, _ = parseContext(mc)
		}
		return newErr(ErrContextMismatch, op, "message context: %s", contextDiff(l.message, msg))
	}
	if l.provider != e.p.ID() {
		return newErr(ErrKeyNotAllowed, op, "blob was wrapped by provider %s, this Envelope uses %s", l.provider, e.p.ID())
	}
	// The key allow-list is checked by load2, before the provider is asked:
	// a cached entry exists only for a key that passed it (the list of a
	// provider never changes), so the hot path skips the lookup.
	return nil
}

// material2 returns the format-2 keys of l's data key, from the cache or
// one provider call; release them with e.done.
func (e *Envelope) material2(ctx context.Context, op string, l *layout2, stable Context, s *scratch) (*keyMaterial, *cacheEntry, error) {
	return e.material2m(ctx, op, l, stable, s, nil)
}

// material2m is material2 with memo, the decryption entry the caller used
// last (a Column's): when l names exactly its key section and it is still
// usable, the cache's map is not consulted.
func (e *Envelope) material2m(ctx context.Context, op string, l *layout2, stable Context, s *scratch, memo *atomic.Pointer[cacheEntry]) (*keyMaterial, *cacheEntry, error) {
	if e.cache == nil {
		m, err := e.load2(ctx, op, l, stable)
		return m, nil, err
	}
	if memo != nil {
		if ent := memo.Load(); ent != nil && ent.m.keyID == string(l.keyID) && bytes.Equal(ent.m.edk, l.edk) {
			if k := ent.m.v2; k != nil && k.provider == l.provider && bytes.Equal(k.stable, l.stable) {
				if _, ok := e.cache.reuse(ent, 0, false); ok {
					return ent.m, ent, nil
				}
			}
		}
		m, ent, err := e.material2m(ctx, op, l, stable, s, nil)
		if err == nil {
			memo.Store(ent)
		}
		return m, ent, err
	}
	if s == nil {
		s = getScratch()
		defer putScratch(s)
	}
	key := decryptKey(s.buf[:0], 'd', l.provider, l.keyID, l.edk, l.stable)
	if ent, _ := e.cache.lookup(key, 0, false); ent != nil {
		return ent.m, ent, nil
	}
	ent, _, err := e.cache.get(ctx, string(key), 0, false, func(ctx context.Context) (*keyMaterial, error) {
		return e.load2(ctx, op, l, stable)
	})
	if err != nil {
		return nil, nil, err
	}
	return ent.m, ent, nil
}

// load2 unwraps l's data key with the provider and derives its keys.
func (e *Envelope) load2(ctx context.Context, op string, l *layout2, stable Context) (*keyMaterial, error) {
	if !allowed(e.p, l.keyID) {
		return nil, newErr(ErrKeyNotAllowed, op, "key %q is not on the allow-list", l.keyID)
	}
	keyID := string(l.keyID)
	dk, err := unwrapDataKey(ctx, e.p, op, keyID, l.edk, stable)
	if err != nil {
		return nil, err
	}
	defer dk.Destroy()
	return newKeyMaterial2(dk.Plaintext, l.provider, bytes.Clone(l.stable), keyID, bytes.Clone(l.edk))
}

// decrypt2 opens a format-2 blob.
func (e *Envelope) decrypt2(ctx context.Context, dst, blob []byte, stable Context, canon []byte, msg Context, mc []byte, s *scratch) (Secret, error) {
	return e.decrypt2m(ctx, dst, blob, stable, canon, msg, mc, s, nil)
}

func (e *Envelope) decrypt2m(ctx context.Context, dst, blob []byte, stable Context, canon []byte, msg Context, mc []byte, s *scratch, memo *atomic.Pointer[cacheEntry]) (Secret, error) {
	var l layout2
	if err := e.check2("decrypt", blob, canon, stable, msg, mc, &l); err != nil {
		return nil, err
	}
	m, ent, err := e.material2m(ctx, "decrypt", &l, stable, s, memo)
	if err != nil {
		return nil, err
	}
	defer e.done(m, ent)
	return open2(dst, m, &l, blob)
}
