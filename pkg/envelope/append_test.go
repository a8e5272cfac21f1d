package envelope

import (
	"bytes"
	"context"
	"testing"
)

// Tests of AppendEncrypt/AppendDecrypt: they append to dst, reuse its spare
// capacity, allow any overlap of dst with their input, and leave no
// plaintext behind when they fail.

var appendPattern = []byte("append-plaintext-")

func appendPlaintext(n int) []byte {
	return bytes.Repeat(appendPattern, n/len(appendPattern)+1)[:n]
}

func sameStart(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func TestAppendEncryptKeepsPrefixAndWritesIntoSpareCapacity(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx, pt := context.Background(), appendPlaintext(1000)
	buf := make([]byte, 6, 8192)
	copy(buf, "PREFIX")
	out, err := e.AppendEncrypt(ctx, buf, pt, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	if !sameStart(out, buf) {
		t.Fatal("AppendEncrypt allocated although dst had room")
	}
	if string(out[:6]) != "PREFIX" {
		t.Fatalf("prefix changed to %q", out[:6])
	}
	got, err := e.Decrypt(ctx, out[6:], benchContext)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("blob appended after the prefix does not decrypt: %v", err)
	}
	// Not enough room: a new slice that still starts with the prefix.
	small := append(make([]byte, 0, 10), "PREFIX"...)
	out2, err := e.AppendEncrypt(ctx, small, pt, benchContext)
	if err != nil || sameStart(out2, small) || string(out2[:6]) != "PREFIX" {
		t.Fatalf("growing dst: err %v, reused %t, prefix %q", err, sameStart(out2, small), out2[:6])
	}
	if got, err := e.Decrypt(ctx, out2[6:], benchContext); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("grown blob does not decrypt: %v", err)
	}
}

func TestAppendDecryptKeepsPrefixAndWritesIntoSpareCapacity(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx, pt := context.Background(), appendPlaintext(1000)
	blob, err := e.Encrypt(ctx, pt, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, 0, 2048), "PREFIX"...)
	out, err := e.AppendDecrypt(ctx, buf, blob, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	if !sameStart(out, buf) || string(out[:6]) != "PREFIX" || !bytes.Equal(out[6:], pt) {
		t.Fatalf("reused %t, prefix %q, plaintext equal %t", sameStart(out, buf), out[:6], bytes.Equal(out[6:], pt))
	}
	var plain []byte // a Secret result is assignable to a []byte variable
	if plain, err = e.AppendDecrypt(ctx, plain[:0], blob, benchContext); err != nil || !bytes.Equal(plain, pt) {
		t.Fatalf("nil dst: %v", err)
	}
}

// Every placement of dst relative to the plaintext in one buffer — before,
// at (plaintext[:0]), inside, after — must give a blob that decrypts to the
// original plaintext.
func TestAppendEncryptAllowsAnyOverlapWithPlaintext(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx := context.Background()
	const n, p = 700, 600 // plaintext at buf[p:p+n]
	want := appendPlaintext(n)
	for _, d := range []int{0, 1, 100, p - 200, p - 1, p, p + 1, p + 350, p + n - 1, p + n, p + n + 5} {
		buf := make([]byte, 4096)
		copy(buf[p:], want)
		out, err := e.AppendEncrypt(ctx, buf[d:d], buf[p:p+n], benchContext)
		if err != nil {
			t.Fatalf("dst at %d: %v", d, err)
		}
		if !sameStart(out, buf[d:]) {
			t.Fatalf("dst at %d: output not written into dst", d)
		}
		got, err := e.Decrypt(ctx, bytes.Clone(out), benchContext)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("dst at %d (plaintext at %d): blob does not decrypt to the plaintext: %v", d, p, err)
		}
	}
}

// Every placement of dst relative to the blob in one buffer — before, at
// (blob[:0]), inside the header, at and inside the body, after — must give
// the plaintext.
func TestAppendDecryptAllowsAnyOverlapWithBlob(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx := context.Background()
	want := appendPlaintext(700)
	blob, err := e.Encrypt(ctx, want, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	const b = 500 // blob at buf[b:]
	bodyStart := len(blob) - len(want) - TagSize
	for _, d := range []int{0, 1, b - 300, b - 1, b, b + 1, b + 40, b + bodyStart, b + bodyStart + 1, b + bodyStart + 300, b + len(blob) - 1, b + len(blob)} {
		buf := make([]byte, 4096)
		copy(buf[b:], blob)
		out, err := e.AppendDecrypt(ctx, buf[d:d], buf[b:b+len(blob)], benchContext)
		if err != nil {
			t.Fatalf("dst at %d (blob at %d, body at %d): %v", d, b, b+bodyStart, err)
		}
		if !sameStart(out, buf[d:]) || !bytes.Equal(out, want) {
			t.Fatalf("dst at %d: in dst %t, plaintext equal %t", d, sameStart(out, buf[d:]), bytes.Equal(out, want))
		}
	}
}

// A failed AppendDecrypt returns nil and leaves no plaintext in dst's spare
// capacity, nor in the blob when decrypting in place; the prefix of dst is
// untouched. A wrong commitment fails before anything is written.
func TestAppendDecryptFailureLeavesNoPlaintext(t *testing.T) {
	e := localEnvelope(t, &CacheConfig{MaxAge: 3600e9})
	ctx := context.Background()
	pt := appendPlaintext(2000)
	blob, err := e.Encrypt(ctx, pt, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	l, err := parse(blob)
	if err != nil {
		t.Fatal(err)
	}
	bodyOff := len(blob) - len(l.body)
	commitOff := len(blob) - cap(l.commitment)
	for _, c := range []struct {
		name    string
		off     int
		inPlace bool
	}{
		{"body byte, separate dst", bodyOff + 1000, false},
		{"tag byte, separate dst", len(blob) - 1, false},
		{"body byte, in place", bodyOff + 1000, true},
		{"commitment byte, separate dst", commitOff, false},
	} {
		bad := bytes.Clone(blob)
		bad[c.off] ^= 1
		var dst []byte
		if c.inPlace {
			dst = bad[:0]
		} else {
			dst = append(bytes.Repeat([]byte{0xAA}, 3000)[:0], "PREFIX"...)
		}
		out, err := e.AppendDecrypt(ctx, dst, bad, benchContext)
		wantKind(t, err, ErrAuthentication, c.name)
		if out != nil {
			t.Fatalf("%s: returned %d bytes with the error", c.name, len(out))
		}
		if bytes.Contains(dst[:cap(dst)], appendPattern) || bytes.Contains(bad, appendPattern) {
			t.Fatalf("%s: plaintext left in dst or blob after a failed decrypt", c.name)
		}
		if !c.inPlace && string(dst[:6]) != "PREFIX" {
			t.Fatalf("%s: dst prefix changed", c.name)
		}
		if c.name == "commitment byte, separate dst" && !bytes.Equal(dst[6:cap(dst)], bytes.Repeat([]byte{0xAA}, 2994)) {
			t.Fatalf("%s: dst written although the commitment check comes first", c.name)
		}
	}
}

// Encrypt and Decrypt are the nil-dst forms: an empty plaintext gives a
// non-nil empty result, as before the append forms existed.
func TestDecryptOfEmptyPlaintextIsNonNil(t *testing.T) {
	e := localEnvelope(t, nil)
	ctx := context.Background()
	blob, err := e.Encrypt(ctx, nil, benchContext)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := e.Decrypt(ctx, blob, benchContext)
	if err != nil || pt == nil || len(pt) != 0 {
		t.Fatalf("Decrypt of an empty plaintext: %v, nil %t, len %d", err, pt == nil, len(pt))
	}
}
