package envelope

import (
	"context"
	"encoding/binary"
	"sync"
)

// ReWrapper moves format-2 blobs to another key, making one provider
// ReEncrypt (and at most one Decrypt) per distinct data key however many
// blobs share it: a column whose rows were written under one cached data key
// is re-wrapped with a handful of KMS calls. Bodies are not touched; each
// blob gets the new key section and its tag. Format-1 blobs are re-wrapped
// one by one as Envelope.ReWrap does. It is safe for concurrent use. It
// keeps the new wrapped keys (not secret) until it is dropped.
type ReWrapper struct {
	e       *Envelope
	toKeyID string
	mu      sync.Mutex
	done    map[string]*rewrapped // by the old key section: provider, key id, wrapped key, stable context
	calls   int64
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

// ProviderReWraps returns how many distinct data keys the provider has
// re-wrapped (each one ReEncrypt with KMS).
func (r *ReWrapper) ProviderReWraps() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// ReWrap returns blob with its data key wrapped under the target key; ec is
// the blob's stable context. A blob already under the target key is
// returned as it is (after its key section is verified), so a re-wrap can be
// run again after an interruption.
func (r *ReWrapper) ReWrap(ctx context.Context, blob []byte, ec Context) ([]byte, error) {
	e := r.e
	if len(blob) == 0 || blob[0] != Version2 {
		return e.ReWrap(ctx, blob, ec, r.toKeyID)
	}
	if !e.p.Allowed(r.toKeyID) {
		return nil, newErr(ErrKeyNotAllowed, "rewrap", "target key %q is not on the allow-list (a blob may only be moved to a key this Envelope can decrypt with)", r.toKeyID)
	}
	s := getScratch()
	defer putScratch(s)
	canon, err := ec.appendCanonical(s.mbuf[:0])
	if err != nil {
		err.(*Error).Op = "rewrap"
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
			r.calls++
		}
		r.mu.Unlock()
	}
	return assemble2(&l, nw), nil
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
	dk, err := e.p.ReWrap(ctx, string(l.keyID), l.edk, ec, r.toKeyID)
	if err != nil {
		return nil, err
	}
	dk.Destroy()
	if dk.KeyID != r.toKeyID || len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEDKBytes {
		return nil, newErr(ErrProvider, "rewrap", "provider returned a wrapped key of %d bytes under %q, want %q", len(dk.Encrypted), dk.KeyID, r.toKeyID)
	}
	return &rewrapped{keyID: dk.KeyID, edk: dk.Encrypted, tag: m.v2.tagFor(l.provider, l.stable, dk.KeyID, dk.Encrypted)}, nil
}

// assemble2 writes l with the key section replaced.
func assemble2(l *layout2, nw *rewrapped) []byte {
	out := make([]byte, 0, len(l.aad)+2+len(nw.keyID)+2+len(nw.edk)+KeyTagSize+len(l.body))
	out = append(out, l.aad...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(nw.keyID)))
	out = append(out, nw.keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(nw.edk)))
	out = append(out, nw.edk...)
	out = append(out, nw.tag[:]...)
	return append(out, l.body...)
}
