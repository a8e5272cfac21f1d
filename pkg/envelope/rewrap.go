package envelope

import (
	"context"
	"sync"
	"sync/atomic"
)

// Moving blobs to another key (docs/envelope-format.md §4 and §10.5): the
// key section is replaced and the authenticated header and body are kept
// byte for byte.

// ReWrap returns blob with its data key wrapped under toKeyID instead (a KMS
// key ARN on this provider's allow-list, or a local key id in its key ring).
// With KMS this is one ReEncrypt call: the plaintext data key never leaves
// KMS. The message id, context, commitment, nonce and body are unchanged, so
// the authenticated header and body stay valid. The caller's context must
// match the blob's, exactly as for Decrypt.
//
// A format-2 blob's key section is authenticated by a tag under a key
// derived from the data key, so re-wrapping one unwraps the data key as well
// (one provider Decrypt, or a cache hit), checks the blob's commitment and
// key tag, and writes a new tag; the body is unchanged. ec is the blob's
// stable context; its message context is not needed.
func (e *Envelope) ReWrap(ctx context.Context, blob []byte, ec Context, toKeyID string) ([]byte, error) {
	if len(blob) > 0 && blob[0] == Version2 {
		return e.NewReWrapper(toKeyID).ReWrap(ctx, blob, ec)
	}
	var l layout
	if err := e.checkBlob("rewrap", blob, ec, &l); err != nil {
		return nil, err
	}
	if err := checkTarget(e.p, toKeyID); err != nil {
		return nil, err
	}
	dk, err := rewrapDataKey(ctx, e.p, string(l.keyID), l.edk, ec, toKeyID)
	if err != nil {
		return nil, err
	}
	return withKeySection(l.aad, dk.KeyID, dk.Encrypted, nil, l.body), nil
}

// ReWrapper moves format-2 blobs to another key, making one provider
// ReEncrypt (and at most one Decrypt) per distinct data key however many
// blobs share it: a column whose rows were written under one cached data key
// is re-wrapped with a handful of KMS calls. Bodies are not touched; each
// blob gets the new key section and its tag. Format-1 blobs are re-wrapped
// one by one as Envelope.ReWrap does. It is safe for concurrent use;
// concurrent calls that meet the same data key before either has re-wrapped
// it may each make the provider call (either result is kept, both are
// valid). It keeps the new wrapped keys (not secret) until it is dropped.
type ReWrapper struct {
	e       *Envelope
	toKeyID string
	mu      sync.Mutex
	done    map[string]*rewrapped // by the old key section: provider, key id, wrapped key, stable context
	calls   atomic.Int64          // provider re-wraps made
}

type rewrapped struct {
	keyID string
	edk   []byte
	tag   [KeyTagSize]byte
}

// NewReWrapper returns a ReWrapper to toKeyID (a KMS key ARN on the
// allow-list, or a local key id in the ring).
func (e *Envelope) NewReWrapper(toKeyID string) *ReWrapper {
	return &ReWrapper{e: e, toKeyID: toKeyID, done: map[string]*rewrapped{}}
}

// ProviderReWraps returns how many data keys the provider has re-wrapped for
// this ReWrapper (each one ReEncrypt with KMS): one per distinct data key
// not already under the target key, more only when concurrent calls met a
// data key at once.
func (r *ReWrapper) ProviderReWraps() int64 { return r.calls.Load() }

// ReWrap returns blob with its data key wrapped under the target key; ec is
// the blob's stable context (for a format-1 blob, its one context). A blob
// already under the target key is
// returned as it is (after its key section is verified), so a re-wrap can be
// run again after an interruption.
func (r *ReWrapper) ReWrap(ctx context.Context, blob []byte, ec Context) ([]byte, error) {
	e := r.e
	if len(blob) == 0 || blob[0] != Version2 {
		return e.ReWrap(ctx, blob, ec, r.toKeyID)
	}
	if err := checkTarget(e.p, r.toKeyID); err != nil {
		return nil, err
	}
	s := getScratch()
	defer putScratch(s)
	canon, err := ec.appendCanonical("rewrap", s.mbuf[:0])
	if err != nil {
		return nil, err
	}
	var l layout2
	if err := parse2Into(blob, &l); err != nil {
		err.(*Error).Op = "rewrap"
		return nil, err
	}
	// The message context is not part of the key section: check it only for
	// form, then the rest exactly as Decrypt does.
	if err := e.check2("rewrap", blob, canon, ec, nil, l.message, &l); err != nil {
		return nil, err
	}
	key := string(decryptKey(s.buf[:0], 'r', l.provider, l.keyID, l.edk, l.stable))
	r.mu.Lock()
	nw, ok := r.done[key]
	r.mu.Unlock()
	if !ok {
		if nw, err = r.rewrapSection(ctx, &l, ec, s); err != nil {
			return nil, err
		}
		r.mu.Lock()
		if prev, ok := r.done[key]; ok {
			nw = prev // a concurrent caller got there first; both results are valid
		} else {
			r.done[key] = nw
		}
		r.mu.Unlock()
	}
	return withKeySection(l.aad, nw.keyID, nw.edk, nw.tag[:], l.body), nil
}

// rewrapSection unwraps the data key, verifies the blob's commitment and
// key tag with it, has the provider re-wrap it and computes the new tag.
func (r *ReWrapper) rewrapSection(ctx context.Context, l *layout2, ec Context, s *scratch) (*rewrapped, error) {
	e := r.e
	m, ent, err := e.material2(ctx, "rewrap", l, ec, s)
	if err != nil {
		return nil, err
	}
	defer e.done(m, ent)
	if !constEq(m.v2.commit[:], l.commitment) {
		return nil, newErr(ErrAuthentication, "rewrap", "key commitment does not match the data key")
	}
	if !constEq(m.v2.keyTag[:], l.keyTag) {
		return nil, newErr(ErrAuthentication, "rewrap", "key section was modified")
	}
	if string(l.keyID) == r.toKeyID {
		return &rewrapped{keyID: r.toKeyID, edk: l.edk, tag: m.v2.keyTag}, nil
	}
	dk, err := rewrapDataKey(ctx, e.p, string(l.keyID), l.edk, ec, r.toKeyID)
	if err != nil {
		return nil, err
	}
	r.calls.Add(1)
	return &rewrapped{keyID: dk.KeyID, edk: dk.Encrypted, tag: m.v2.tagFor(l.provider, l.stable, dk.KeyID, dk.Encrypted)}, nil
}
