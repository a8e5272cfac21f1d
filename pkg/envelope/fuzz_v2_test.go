package envelope

import (
	"bytes"
	"context"
	"testing"
)

// FuzzDecryptV2: any byte string handed to the format-2 reader either opens
// to the plaintext of a blob this Envelope wrote — and then it is that blob,
// byte for byte — or fails with an *Error and no plaintext; it never panics.
// Seeds are format-2 blobs made at start-up under a fixed data key (so every
// fuzzing process makes the same ones) and their halves.
func FuzzDecryptV2(f *testing.F) {
	sp := &staticProvider{keyID: "fuzz-key", edk: bytes.Repeat([]byte{0xed}, 40), dataKey: fuzzKEK}
	e, _ := New(Config{Provider: sp, Cache: &CacheConfig{MaxAge: 1 << 40, MaxEntries: 8}})
	col, err := e.Column("fuzz", "value", nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	originals := map[string][]byte{}
	for i, pt := range fuzzPlaintexts {
		row := string(rune('a' + i))
		blob, err := col.AppendEncrypt(ctx, nil, row, pt)
		if err != nil {
			f.Fatal(err)
		}
		originals[string(blob)] = pt
		f.Add(blob, row)
		f.Add(blob[:len(blob)/2], row)
	}
	f.Fuzz(func(t *testing.T, blob []byte, row string) {
		if row == "" {
			row = "a"
		}
		got, err := col.AppendDecrypt(ctx, nil, row, blob)
		if err != nil {
			if asError(err) == nil || got != nil {
				t.Fatalf("%T %v with %d plaintext bytes", err, err, len(got))
			}
			return
		}
		want, ok := originals[string(blob)]
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("a blob that is not one the Envelope wrote opened (%d bytes)", len(blob))
		}
		var l layout2
		if err := parse2Into(blob, &l); err != nil {
			t.Fatalf("opened but does not parse: %v", err)
		}
	})
}
