package envelope

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// region names the part of a blob an offset falls in.
func region(l *layout, blob []byte, off int) string {
	start := func(s []byte) int { return len(blob) - cap(s) } // offset of a subslice of blob
	ctxStart := start(l.context)
	switch {
	case off == 0:
		return "version"
	case off == 1:
		return "provider"
	case off < 2+MessageIDSize:
		return "message id"
	case off < ctxStart:
		return "context length"
	case off < ctxStart+len(l.context):
		return "context"
	case off < start(l.commitment)+CommitmentSize:
		return "commitment"
	case off < start(l.nonce)+NonceSize:
		return "nonce"
	case off < len(l.aad):
		return "body length"
	case off < start(l.keyID):
		return "key id length"
	case off < start(l.keyID)+len(l.keyID):
		return "key id"
	case off < start(l.edk):
		return "edk length"
	case off < start(l.edk)+len(l.edk):
		return "edk"
	}
	return "body"
}

// expected kinds per region when one byte changes.
var tamperKinds = map[string][]error{
	"version":        {ErrUnsupportedVersion},
	"provider":       {ErrMalformed, ErrKeyNotAllowed},
	"message id":     {ErrAuthentication},
	"context length": {ErrMalformed},
	"context":        {ErrMalformed, ErrContextMismatch},
	"commitment":     {ErrAuthentication},
	"nonce":          {ErrAuthentication},
	"body length":    {ErrMalformed},
	"key id length":  {ErrMalformed},
	"key id":         {ErrKeyNotAllowed, ErrMalformed},
	"edk length":     {ErrMalformed},
	// KMS answers InvalidCiphertextException for a damaged wrapped key
	// (ErrAuthentication). moto keeps the key id in the first 36 bytes of its
	// ciphertext blobs and answers a change there with AccessDeniedException
	// (ErrProvider, class permission) where real KMS says IncorrectKeyException.
	// Both fail closed.
	"edk":  {ErrAuthentication, ErrProvider},
	"body": {ErrAuthentication},
}

type tamperCase struct {
	name  string
	blob  []byte
	ec    Context
	kinds []error
}

// checkTamper runs one case: a typed error of an expected kind, no
// plaintext, no panic, no secret in the text.
func checkTamper(t *testing.T, e *Envelope, c tamperCase, secrets [][]byte) {
	t.Helper()
	var got Secret
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: panic %v", c.name, r)
			}
		}()
		got, err = e.Decrypt(context.Background(), c.blob, c.ec)
	}()
	if err == nil {
		t.Fatalf("%s: decrypted", c.name)
	}
	if got != nil {
		t.Fatalf("%s: returned plaintext with the error", c.name)
	}
	var ee *Error
	if !errors.As(err, &ee) {
		t.Fatalf("%s: untyped error %v", c.name, err)
	}
	ok := false
	for _, k := range c.kinds {
		ok = ok || errors.Is(err, k)
	}
	if !ok {
		t.Fatalf("%s: error %q, want one of %v", c.name, err, c.kinds)
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 4 && (strings.Contains(msg, string(s)) || strings.Contains(msg, hex.EncodeToString(s)) || strings.Contains(msg, base64.StdEncoding.EncodeToString(s))) {
			t.Fatalf("%s: error text contains a secret: %s", c.name, msg)
		}
	}
}

// rebuild writes a blob from a layout with another key section or context.
func rebuild(l *layout, ctxCanon []byte, keyID, edk []byte) []byte {
	out := append([]byte{}, l.aad[:2+MessageIDSize]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(ctxCanon)))
	out = append(out, ctxCanon...)
	out = append(out, l.commitment...)
	out = append(out, l.nonce...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(l.body)))
	out = binary.BigEndian.AppendUint16(out, uint16(len(keyID)))
	out = append(out, keyID...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(edk)))
	out = append(out, edk...)
	return append(out, l.body...)
}

func tamperMatrix(t *testing.T, e *Envelope, stranger *Envelope, secrets [][]byte) {
	ctx := context.Background()
	ec := Context{"table": "payees", "column": "iban", "row": "7"}
	pt := []byte("plaintext-IBAN-DE89370400440532013000")
	secrets = append(secrets, pt)
	blob, err := e.Encrypt(ctx, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	l, err := parse(blob)
	if err != nil {
		t.Fatal(err)
	}
	var cases []tamperCase
	seen := map[string]int{}
	for off := range blob {
		r := region(l, blob, off)
		seen[r]++
		for _, x := range []byte{0x01, 0x80} {
			b := bytes.Clone(blob)
			b[off] ^= x
			cases = append(cases, tamperCase{fmt.Sprintf("flip %#x at %d (%s)", x, off, r), b, ec, tamperKinds[r]})
		}
	}
	if len(seen) != len(tamperKinds) {
		t.Fatalf("matrix covers regions %v", seen)
	}
	// Truncation at every length, appended bytes.
	for n := 0; n < len(blob); n++ {
		cases = append(cases, tamperCase{fmt.Sprintf("truncated to %d", n), bytes.Clone(blob[:n]), ec, []error{ErrMalformed}})
	}
	for _, extra := range []int{1, 16, 4096} {
		cases = append(cases, tamperCase{fmt.Sprintf("%d bytes appended", extra), append(bytes.Clone(blob), make([]byte, extra)...), ec, []error{ErrMalformed}})
	}
	// Another blob's wrapped data key: same key and context, different data key.
	// (An uncached Envelope on the same provider, so the data key differs.)
	fresh, _ := New(Config{Provider: e.p, WriteVersion: Version1})
	other, _ := fresh.Encrypt(ctx, []byte("other"), ec)
	lo, _ := parse(other)
	cases = append(cases, tamperCase{"data key swapped with another blob's", rebuild(l, l.context, lo.keyID, lo.edk), ec, []error{ErrAuthentication}})
	otherCtx, _ := fresh.Encrypt(ctx, []byte("other"), Context{"table": "payees", "column": "iban", "row": "8"})
	loc, _ := parse(otherCtx)
	cases = append(cases, tamperCase{"data key swapped with one under another context", rebuild(l, l.context, loc.keyID, loc.edk), ec, []error{ErrAuthentication}})
	// Context changes: expected by the caller, and rewritten in the blob.
	changes := map[string]Context{
		"changed": {"table": "payees", "column": "iban", "row": "8"},
		"added":   {"table": "payees", "column": "iban", "row": "7", "tenant": "x"},
		"removed": {"table": "payees", "column": "iban"},
		"empty":   nil,
	}
	for name, c2 := range changes {
		cases = append(cases, tamperCase{"caller context " + name, bytes.Clone(blob), c2, []error{ErrContextMismatch}})
		canon, _ := c2.canonical()
		cases = append(cases, tamperCase{"blob context " + name + " to match the caller", rebuild(l, canon, l.keyID, l.edk), c2, []error{ErrAuthentication}})
	}
	// A blob under a key the Envelope does not allow.
	foreign, _ := stranger.Encrypt(ctx, pt, ec)
	cases = append(cases, tamperCase{"key not on the allow-list", foreign, ec, []error{ErrKeyNotAllowed}})
	for _, c := range cases {
		checkTamper(t, e, c, secrets)
	}
	t.Logf("%d tamper cases over a %d-byte blob, regions %v", len(cases), len(blob), seen)
	// The untouched blob still decrypts (the matrix did not poison a cache).
	if got, err := e.Decrypt(ctx, blob, ec); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("original blob after the matrix: %v", err)
	}
}

func TestTamperMatrixLocalProviderFailsClosedWithTypedErrors(t *testing.T) {
	kek := bytes.Repeat([]byte{0x11}, 32)
	for _, cache := range []*CacheConfig{nil, {MaxAge: 1 << 40}} {
		t.Run(fmt.Sprintf("cache=%t", cache != nil), func(t *testing.T) {
			e := localEnvelope(t, cache)
			stranger := localEnvelope(t, nil, fixedLocalKey(t, "other", 0x22))
			tamperMatrix(t, e, stranger, [][]byte{kek})
		})
	}
}

func TestTamperMatrixKMSProviderFailsClosedWithTypedErrors(t *testing.T) {
	c := motoKMS(t)
	a, b := newKey(t, c, ""), newKey(t, c, "")
	e := kmsEnvelope(t, c, a, nil, &CacheConfig{MaxAge: 1 << 40})
	stranger := kmsEnvelope(t, c, b, nil, nil)
	tamperMatrix(t, e, stranger, nil)
}
